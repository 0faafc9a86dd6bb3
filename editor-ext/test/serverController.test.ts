import { beforeEach, describe, expect, it } from 'vitest';
import { CancellationTokenSource } from 'vscode';
import { FailureReporter } from '../src/faults';
import { ClientHooks, ClientLike, ControllerDeps, LaunchSpec, ServerController } from '../src/serverController';
import { DEFAULTS, CoveySettings } from '../src/settings';
import { StatusModel } from '../src/statusModel';

/** A language client that records what the controller asks of it. */
class FakeClient implements ClientLike {
  handlers = new Map<string, (p: unknown) => void>();
  requests: Array<{ method: string; params: unknown; token: unknown }> = [];
  started = 0;
  stopped = 0;
  answers = new Map<string, unknown>();
  constructor(
    readonly spec: LaunchSpec,
    readonly hooks: ClientHooks,
    private readonly failWith?: Error,
    private readonly commands: string[] = [],
  ) {}
  async start() {
    this.started += 1;
    if (this.failWith) throw this.failWith;
  }
  async stop() {
    this.stopped += 1;
  }
  onNotification(method: string, handler: (p: unknown) => void) {
    this.handlers.set(method, handler);
    return { dispose: () => this.handlers.delete(method) };
  }
  async sendRequest<R>(method: string, params: unknown, token: unknown): Promise<R> {
    this.requests.push({ method, params, token });
    return this.answers.get(method) as R;
  }
  serverCommands() {
    return this.commands;
  }
  notify(method: string, params: unknown) {
    this.handlers.get(method)?.(params);
  }
}

interface Harness {
  controller: ServerController;
  clients: FakeClient[];
  status: StatusModel;
  notifications: string[];
  registered: Map<string, (...args: unknown[]) => unknown>;
  settings: CoveySettings;
  failNext?: Error;
}

function harness(commands: string[] = []): Harness {
  const h = {
    clients: [] as FakeClient[],
    status: { server: 'starting' } as StatusModel,
    notifications: [] as string[],
    registered: new Map<string, (...args: unknown[]) => unknown>(),
    settings: { ...DEFAULTS },
  } as Harness;
  const deps: ControllerDeps = {
    createClient: (spec, hooks) => {
      const client = new FakeClient(spec, hooks, h.failNext, commands);
      client.answers.set('covey/engineStatus', { state: 'up', device: 'cpu' });
      client.answers.set('covey/usageSummary', { rows: [], total: { calls: 3, localCostUsd: 0.0001, llmCostUsd: 0.001 } });
      h.clients.push(client);
      return client;
    },
    settings: () => h.settings,
    diagnose: async (python) => (python === 'python3' ? "ModuleNotFoundError: No module named 'covey_server'" : undefined),
    interpreter: async (s) => ({ path: s.pythonPath || 'python3', source: s.pythonPath ? 'setting' : 'default' }),
    workspaceFolder: () => '/ws',
    env: () => ({ COVEY_ENGINE_API_KEY: 'k' }),
    askInstruction: async () => 'x',
    registerCommand: (id, run) => {
      h.registered.set(id, run);
      return { dispose: () => h.registered.delete(id) };
    },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    status: { update: (patch) => (h.status = { ...h.status, ...patch }) },
    reporter: new FailureReporter(async (m) => {
      h.notifications.push(m);
      return undefined;
    }, () => undefined),
    usageRefreshMs: 0,
    engineRecheckMs: 10,
  };
  h.controller = new ServerController(deps);
  return h;
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Waits until `condition` holds (fails the test after 5 s). */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 5000) throw new Error('condition not reached in 5 s');
    await tick();
  }
}

describe('ServerController', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });

  it('launches python -m covey_server with the settings as initializationOptions', async () => {
    h.settings = { ...DEFAULTS, pythonPath: '/venv/bin/python', engineUrl: 'http://127.0.0.1:8765', debounceMs: 50 };
    expect(await h.controller.start()).toBe(true);
    const spec = h.clients[0].spec;
    expect(spec.command).toBe('/venv/bin/python');
    expect(spec.args).toEqual(['-m', 'covey_server']);
    expect(spec.cwd).toBe('/ws');
    expect(spec.env.COVEY_ENGINE_API_KEY).toBe('k');
    expect(spec.initializationOptions).toMatchObject({ engine: { url: 'http://127.0.0.1:8765' }, debounceMs: 50 });
    expect(h.status.server).toBe('running');
  });

  it('leaves the debounce to the server when none is set', async () => {
    h.settings = { ...DEFAULTS, debounceMs: undefined };
    expect(await h.controller.start()).toBe(true);
    expect(h.clients[0].spec.initializationOptions).not.toHaveProperty('debounceMs');
  });

  it('asks for the engine state and today’s usage after starting, passing a token', async () => {
    await h.controller.start();
    await tick();
    const methods = h.clients[0].requests.map((r) => r.method);
    expect(methods).toContain('covey/engineStatus');
    expect(h.clients[0].requests.find((r) => r.method === 'covey/usageSummary')?.params).toEqual({ since: 'today' });
    expect(h.clients[0].requests.every((r) => r.token !== undefined)).toBe(true);
    expect(h.status.engine?.state).toBe('up');
    expect(h.status.today?.calls).toBe(3);
  });

  it('shows the latency of each finished call and refreshes the cost', async () => {
    await h.controller.start();
    await tick();
    const client = h.clients[0];
    const before = client.requests.length;
    client.notify('covey/callFinished', { callId: 'c1', task: 'completion', specialist: 'completion', status: 'ok', latencyMs: 187 });
    expect(h.status.lastLatencyMs).toBe(187);
    await tick();
    expect(client.requests.slice(before).map((r) => r.method)).toEqual(['covey/usageSummary']);
  });

  it('tracks engine status notifications so completions can stay quiet', async () => {
    await h.controller.start();
    h.clients[0].notify('covey/engineStatus', { state: 'down', reason: 'no engine' });
    expect(h.controller.engineState).toBe('down');
    expect(h.clients[0].hooks.middleware.engineState()).toBe('down');
    expect(h.status.engine?.reason).toBe('no engine');
  });

  it('registers covey.accept when the server does not advertise it, forwarding to the server', async () => {
    await h.controller.start();
    const accept = h.registered.get('covey.accept');
    expect(accept).toBeDefined();
    await accept!('call-42');
    const sent = h.clients[0].requests.find((r) => r.method === 'workspace/executeCommand');
    expect(sent?.params).toEqual({ command: 'covey.accept', arguments: ['call-42'] });
  });

  it('leaves covey.accept to the language client when the server advertises it', async () => {
    const h2 = harness(['covey.accept', 'covey.reject', 'covey.refactor']);
    await h2.controller.start();
    expect(h2.registered.has('covey.accept')).toBe(false);
  });

  it('reports a failed start once, however often it is retried', async () => {
    h.failNext = new Error('spawn python3 ENOENT');
    expect(await h.controller.start()).toBe(false);
    expect(await h.controller.restart()).toBe(false);
    expect(await h.controller.restart()).toBe(false);
    expect(h.notifications).toHaveLength(1);
    expect(h.notifications[0]).toContain("failed to start with python3: ModuleNotFoundError: No module named 'covey_server'");
    expect(h.status.server).toBe('failed');
    await expect(h.controller.request('covey/usageSummary', {}, new CancellationTokenSource().token)).rejects.toThrow(
      'not running',
    );
  });

  it('restarts with the new settings and stops the old client', async () => {
    await h.controller.start();
    h.settings = { ...DEFAULTS, storeText: true };
    await h.controller.restart();
    expect(h.clients).toHaveLength(2);
    expect(h.clients[0].stopped).toBe(1);
    expect(h.clients[1].spec.initializationOptions.storeText).toBe(true);
    expect(h.clients[0].handlers.size).toBe(0);
  });

  it('gives up on a crash loop with one notification', async () => {
    await h.controller.start();
    const hooks = h.clients[0].hooks;
    expect([hooks.onClosed(), hooks.onClosed(), hooks.onClosed()]).toEqual(['restart', 'restart', 'restart']);
    expect(hooks.onClosed()).toBe('give-up');
    expect(hooks.onClosed()).toBe('give-up');
    expect(h.notifications).toHaveLength(1);
    expect(h.status.server).toBe('failed');
  });

  it('asks again while the engine is down, and stops once it is back', async () => {
    await h.controller.start();
    await tick(); // the first ask, made at start, has its answer
    const client = h.clients[0];
    client.answers.set('covey/engineStatus', { state: 'down' });
    client.notify('covey/engineStatus', { state: 'down', reason: 'connection refused' });
    const asked = () => client.requests.filter((r) => r.method === 'covey/engineStatus').length;
    await until(() => asked() >= 3); // the first ask at start, then rechecks
    client.answers.set('covey/engineStatus', { state: 'up' });
    await until(() => h.status.engine?.state === 'up');
    const afterUp = asked();
    await new Promise((r) => setTimeout(r, 50));
    expect(asked()).toBe(afterUp);
  });

  it('stops asking for usage when the server does not know covey/usageSummary', async () => {
    await h.controller.start();
    const client = h.clients[0];
    client.sendRequest = async <R>(method: string, params: unknown, token: unknown): Promise<R> => {
      client.requests.push({ method, params, token });
      if (method === 'covey/usageSummary') throw Object.assign(new Error('Method Not Found'), { code: -32601 });
      return client.answers.get(method) as R;
    };
    await h.controller.refreshUsage();
    client.notify('covey/callFinished', { callId: 'c2', task: 'completion', specialist: 'completion', status: 'ok', latencyMs: 50 });
    await tick();
    expect(client.requests.filter((r) => r.method === 'covey/usageSummary').length).toBe(2); // start + the failing one
    expect(h.status.lastLatencyMs).toBe(50);
  });
});
