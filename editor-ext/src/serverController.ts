// Owns the language client's life: launch with the right Python and settings, restart,
// stop, route Covey's notifications to the status bar, and report faults once.
import * as vscode from 'vscode';
import { startFailureMessage } from './diagnose';
import { ShownSuggestions } from './dismiss';
import { FailureReporter, RestartPolicy } from './faults';
import { MiddlewareDeps } from './middleware';
import {
  CallFinished,
  EngineState,
  EngineStatus,
  Methods,
  ServerCommands,
  UsageSummary,
} from './protocol';
import { Interpreter } from './python';
import { CoveySettings, DocumentFilter, documentSelector, toInitializationOptions } from './settings';
import { StatusModel } from './statusModel';

export interface LaunchSpec {
  command: string;
  args: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  initializationOptions: Record<string, unknown>;
  documentSelector: DocumentFilter[];
}

export interface ClientHooks {
  middleware: MiddlewareDeps;
  /** The server's connection closed on its own: restart it or give up. */
  onClosed(): 'restart' | 'give-up';
}

/** The part of a LanguageClient the controller uses (an adapter wraps the real one). */
export interface ClientLike {
  start(): Promise<void>;
  stop(timeoutMs?: number): Promise<void>;
  onNotification(method: string, handler: (params: unknown) => void): { dispose(): unknown };
  sendRequest<R>(method: string, params: unknown, token: vscode.CancellationToken): Promise<R>;
  serverCommands(): string[];
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface ControllerDeps {
  createClient(spec: LaunchSpec, hooks: ClientHooks): ClientLike;
  settings(): CoveySettings;
  interpreter(settings: CoveySettings): Promise<Interpreter>;
  /** Why this Python cannot run the server (undefined when it can or nobody knows). */
  diagnose(python: string): Promise<string | undefined>;
  workspaceFolder(): string | undefined;
  env(): NodeJS.ProcessEnv;
  askInstruction(): PromiseLike<string | undefined>;
  registerCommand(id: string, run: (...args: unknown[]) => unknown): { dispose(): unknown };
  log: Logger;
  status: { update(patch: Partial<StatusModel>): void };
  reporter: FailureReporter;
  now?: () => number;
  /** Delay that batches usage refreshes after calls finish. */
  usageRefreshMs?: number;
  /** While the engine is down, how often to ask the server whether it is back. */
  engineRecheckMs?: number;
}

/** JSON-RPC "method not found": a server without this Covey extension message. */
const METHOD_NOT_FOUND = -32601;

function isMethodNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === METHOD_NOT_FOUND;
}

export const SERVER_MODULE = 'covey_server';

export class ServerController {
  private client: ClientLike | undefined;
  private running = false;
  private everRan = false;
  private engine: EngineStatus | undefined;
  private disposables: Array<{ dispose(): unknown }> = [];
  private queue: Promise<unknown> = Promise.resolve();
  private usageTimer: ReturnType<typeof setTimeout> | undefined;
  private usageSupported = true;
  private engineTimer: ReturnType<typeof setInterval> | undefined;
  private usageTokens = new vscode.CancellationTokenSource();
  private readonly policy = new RestartPolicy();
  /** Each document's last suggestion, so Escape can report it rejected (`dismiss.ts`). */
  readonly shown = new ShownSuggestions();

  constructor(private readonly deps: ControllerDeps) {}

  get engineState(): EngineState | undefined {
    return this.engine?.state;
  }

  get isRunning(): boolean {
    return this.running;
  }

  start(): Promise<boolean> {
    return this.serialize(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.serialize(() => this.doStop());
  }

  restart(): Promise<boolean> {
    return this.serialize(async () => {
      await this.doStop();
      return this.doStart();
    });
  }

  async request<R>(method: string, params: unknown, token: vscode.CancellationToken): Promise<R> {
    if (!this.client || !this.running) {
      throw new Error('the Covey server is not running');
    }
    return this.client.sendRequest<R>(method, params, token);
  }

  executeServerCommand(command: string, args: unknown[], token: vscode.CancellationToken): Promise<unknown> {
    return this.request('workspace/executeCommand', { command, arguments: args }, token);
  }

  /** A server command whose answer nobody waits for (accept, reject): a failure is logged. */
  notifyServer(command: string, args: unknown[]): Promise<unknown> {
    const tokens = new vscode.CancellationTokenSource();
    return this.executeServerCommand(command, args, tokens.token)
      .catch((e) => this.deps.log.warn(`${command} failed: ${String(e)}`))
      .finally(() => tokens.dispose());
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.usageTokens.dispose();
  }

  private serialize<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async doStart(): Promise<boolean> {
    const { deps } = this;
    const settings = deps.settings();
    const interpreter = await deps.interpreter(settings);
    const spec: LaunchSpec = {
      command: interpreter.path,
      args: ['-m', SERVER_MODULE],
      cwd: deps.workspaceFolder(),
      env: deps.env(),
      initializationOptions: toInitializationOptions(settings),
      documentSelector: documentSelector(settings.languages),
    };
    deps.log.info(`starting ${spec.command} ${spec.args.join(' ')} (python from ${interpreter.source})`);
    deps.status.update({ server: 'starting', engine: undefined });
    this.engine = undefined;
    this.usageSupported = true;
    const client = deps.createClient(spec, {
      middleware: {
        askInstruction: () => deps.askInstruction(),
        engineState: () => this.engine?.state,
        shown: this.shown,
      },
      onClosed: () => this.onClosed(),
    });
    this.client = client;
    this.disposables.push(
      client.onNotification(Methods.engineStatus, (p) => this.onEngineStatus(p as EngineStatus)),
      client.onNotification(Methods.callFinished, (p) => this.onCallFinished(p as CallFinished)),
    );
    try {
      await client.start();
    } catch (error) {
      this.running = false;
      this.client = undefined;
      this.watchEngine(false);
      this.disposeAll();
      const why = error instanceof Error ? error.message : String(error);
      deps.log.error(`server failed to start: ${why}`);
      deps.status.update({ server: 'failed' });
      const problem = await deps.diagnose(interpreter.path).catch(() => undefined);
      deps.reporter.report(startFailureMessage(interpreter.path, why, problem));
      return false;
    }
    this.running = true;
    this.everRan = true;
    deps.reporter.reset();
    deps.status.update({ server: 'running' });
    this.registerMissingCommands(client);
    void this.fetchEngineStatus();
    this.scheduleUsageRefresh(0);
    return true;
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.running = false;
    this.usageTokens.cancel();
    this.usageTokens.dispose();
    this.usageTokens = new vscode.CancellationTokenSource();
    if (this.usageTimer) {
      clearTimeout(this.usageTimer);
      this.usageTimer = undefined;
    }
    this.watchEngine(false);
    this.disposeAll();
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.deps.log.warn(`stopping the server: ${String(error)}`);
      }
    }
    this.deps.status.update({ server: 'stopped' });
  }

  private disposeAll(): void {
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }

  /**
   * VS Code runs an inline item's command itself when the user accepts it with Tab. The
   * language client registers the commands the server advertises; `covey.accept` and
   * `covey.reject` must exist even if a server doesn't advertise them.
   */
  private registerMissingCommands(client: ClientLike): void {
    const advertised = new Set(client.serverCommands());
    for (const command of [ServerCommands.accept, ServerCommands.reject]) {
      if (advertised.has(command)) {
        continue;
      }
      this.disposables.push(
        this.deps.registerCommand(command, (...args: unknown[]) => this.notifyServer(command, args)),
      );
    }
  }

  private onClosed(): 'restart' | 'give-up' {
    const decision = this.policy.onClosed(this.everRan && this.running, (this.deps.now ?? Date.now)());
    this.deps.log.warn(`server connection closed; ${decision === 'restart' ? 'restarting' : 'giving up'}`);
    if (decision === 'give-up' && this.running) {
      this.running = false;
      this.watchEngine(false);
      this.deps.status.update({ server: 'failed' });
      this.deps.reporter.report(
        'Covey: the language server keeps stopping and will not be restarted. Use "Covey: Restart Server" after fixing the cause.',
      );
    }
    return decision;
  }

  private onEngineStatus(status: EngineStatus): void {
    this.engine = status;
    this.deps.status.update({ engine: status });
    // Completions stay quiet while the engine is down, so nothing else would notice it
    // coming back (e.g. `covey engine up` in a terminal): ask now and then.
    this.watchEngine(status.state === 'down' && this.client !== undefined);
  }

  private watchEngine(on: boolean): void {
    if (on && !this.engineTimer) {
      this.engineTimer = setInterval(() => void this.fetchEngineStatus(), this.deps.engineRecheckMs ?? 10000);
    } else if (!on && this.engineTimer) {
      clearInterval(this.engineTimer);
      this.engineTimer = undefined;
    }
  }

  private onCallFinished(call: CallFinished): void {
    if (typeof call.latencyMs === 'number') {
      this.deps.status.update({
        lastLatencyMs: call.latencyMs,
        lastTask: call.task,
        lastCostUsd: call.localCostUsd,
        lastLlmCostUsd: call.llmCostUsd,
      });
    }
    this.scheduleUsageRefresh(this.deps.usageRefreshMs ?? 2000);
  }

  private async fetchEngineStatus(): Promise<void> {
    try {
      const status = await this.request<EngineStatus | null>(Methods.engineStatus, {}, this.usageTokens.token);
      if (status && typeof status.state === 'string') {
        this.onEngineStatus(status);
      }
    } catch (error) {
      this.deps.log.warn(`${Methods.engineStatus}: ${String(error)}`);
    }
  }

  private scheduleUsageRefresh(delayMs: number): void {
    if (this.usageTimer || !this.usageSupported) {
      return; // one refresh already pending covers this call too
    }
    this.usageTimer = setTimeout(() => {
      this.usageTimer = undefined;
      void this.refreshUsage();
    }, delayMs);
  }

  async refreshUsage(): Promise<void> {
    try {
      const summary = await this.request<UsageSummary | null>(
        Methods.usageSummary,
        { since: 'today' },
        this.usageTokens.token,
      );
      if (summary?.total) {
        this.deps.status.update({ today: summary.total });
      }
    } catch (error) {
      if (isMethodNotFound(error)) {
        this.usageSupported = false; // an older server: stop asking until the next start
      }
      this.deps.log.warn(`${Methods.usageSummary}: ${String(error)}`);
    }
  }
}
