// The real vscode-languageclient behind the controller's ClientLike interface.
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
} from 'vscode-languageclient/node';
import { createMiddleware } from './middleware';
import { ClientHooks, ClientLike, LaunchSpec } from './serverController';

export const CLIENT_ID = 'covey';
export const CLIENT_NAME = 'Covey';

/**
 * The stock client pops its own notifications for start and crash errors; Covey reports
 * those once through FailureReporter instead, so every message here only goes to the log.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | 'force'): void {
    super.error(message, data, false);
  }
}

export function createLanguageClient(
  spec: LaunchSpec,
  hooks: ClientHooks,
  channel: vscode.LogOutputChannel,
): ClientLike {
  const serverOptions: ServerOptions = {
    command: spec.command,
    args: spec.args,
    options: { cwd: spec.cwd, env: spec.env },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: spec.documentSelector,
    initializationOptions: spec.initializationOptions,
    outputChannel: channel,
    traceOutputChannel: channel,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    middleware: createMiddleware(hooks.middleware),
    // Failure is reported by the controller when start() rejects; never retry here.
    initializationFailedHandler: () => false,
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue, handled: true }),
      closed: () =>
        hooks.onClosed() === 'restart'
          ? { action: CloseAction.Restart, handled: true }
          : { action: CloseAction.DoNotRestart, handled: true },
    },
  };
  const client = new QuietLanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
  return {
    start: () => client.start(),
    stop: (timeoutMs) => (client.needsStop() ? client.stop(timeoutMs) : Promise.resolve()),
    onNotification: (method, handler) => client.onNotification(method, handler),
    sendRequest: <R>(method: string, params: unknown, token: vscode.CancellationToken) =>
      client.sendRequest<R>(method, params, token),
    serverCommands: () => client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [],
  };
}
