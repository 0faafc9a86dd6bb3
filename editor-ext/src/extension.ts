// Wires the parts together; the logic lives in the modules it imports.
import * as vscode from 'vscode';
import { importProblem } from './diagnose';
import { dismiss } from './dismiss';
import { FailureReporter } from './faults';
import { createLanguageClient } from './languageClient';
import { ACCEPT_NEXT_EDIT, DISMISS_NEXT_EDIT, NextEdits } from './nextEdit';
import { editorSnapshot, NextEditView } from './nextEditView';
import { Methods, ServerCommands, UsageSummary } from './protocol';
import { interpreterFromPythonExtension, PythonExtensionApi, resolveInterpreter } from './python';
import { readSettings, SERVER_KEYS } from './settings';
import { CoveyStatusBar, SHOW_LOG, SHOW_USAGE } from './statusBar';
import { ServerController } from './serverController';
import { UsagePanel } from './usagePanel';

const PYTHON_EXTENSION = 'ms-python.python';
/** Bound to Escape while ghost text shows (package.json). */
const DISMISS = 'covey.dismissSuggestion';

let controller: ServerController | undefined;

async function pythonExtensionApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION);
  if (!extension) {
    return undefined;
  }
  return extension.isActive ? extension.exports : extension.activate();
}

function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function activate(context: vscode.ExtensionContext): { controller: ServerController } {
  const channel = vscode.window.createOutputChannel('Covey', { log: true });
  const status = new CoveyStatusBar();
  const reporter = new FailureReporter(
    (text, ...actions) => vscode.window.showErrorMessage(text, ...actions),
    () => channel.show(true),
  );
  const server = new ServerController({
    createClient: (spec, hooks) => createLanguageClient(spec, hooks, channel),
    settings: () => readSettings(vscode.workspace.getConfiguration('covey')),
    interpreter: (settings) =>
      resolveInterpreter(settings.pythonPath, workspaceFolder(), async () =>
        interpreterFromPythonExtension(await pythonExtensionApi(), vscode.workspace.workspaceFolders?.[0]?.uri),
      ),
    diagnose: (python) => importProblem(python),
    workspaceFolder,
    env: () => ({ ...process.env }),
    askInstruction: () =>
      vscode.window.showInputBox({
        title: 'Covey: Refactor selection',
        prompt: 'How should the selection change?',
        placeHolder: 'e.g. use a list comprehension',
        ignoreFocusOut: true,
      }),
    registerCommand: (id, run) => vscode.commands.registerCommand(id, run),
    log: {
      info: (m) => channel.info(m),
      warn: (m) => channel.warn(m),
      error: (m) => channel.error(m),
    },
    status,
    reporter,
  });
  controller = server;

  const nextEditView = new NextEditView();
  const nextEdits = new NextEdits(
    {
      activeEditor: () => editorSnapshot(vscode.window.activeTextEditor),
      settings: () => readSettings(vscode.workspace.getConfiguration('covey')),
      request: (params, token) => server.request(Methods.nextEdit, params, token),
      notifyServer: (command, args) => server.notifyServer(command, args),
      log: { warn: (m) => channel.warn(m) },
    },
    nextEditView,
  );

  const usage = new UsagePanel((since, token) =>
    server.request<UsageSummary | null>(Methods.usageSummary, { since }, token),
  );

  const engineCommand = (command: string, title: string) => () =>
    vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (_progress, token) => {
        try {
          await server.executeServerCommand(command, [], token);
        } catch (error) {
          if (!token.isCancellationRequested) {
            void vscode.window.showErrorMessage(`${title} failed: ${message(error)}`);
          }
        }
      },
    );

  context.subscriptions.push(
    channel,
    status,
    vscode.commands.registerCommand('covey.startEngine', engineCommand(ServerCommands.engineStart, 'Covey: starting the engine')),
    vscode.commands.registerCommand('covey.stopEngine', engineCommand(ServerCommands.engineStop, 'Covey: stopping the engine')),
    vscode.commands.registerCommand(SHOW_USAGE, () => usage.show()),
    vscode.commands.registerCommand(SHOW_LOG, () => channel.show(true)),
    vscode.commands.registerCommand('covey.restartServer', () => server.restart()),
    vscode.commands.registerCommand(DISMISS, () =>
      dismiss(
        {
          hide: () => vscode.commands.executeCommand('editor.action.inlineSuggest.hide'),
          activeDocument: () => {
            const doc = vscode.window.activeTextEditor?.document;
            return doc && { uri: doc.uri.toString(), version: doc.version };
          },
          reject: (callId) => server.notifyServer(ServerCommands.reject, [callId]),
        },
        server.shown,
      ),
    ),
    nextEdits, // before its view: disposing it clears the view's decorations
    nextEditView,
    vscode.commands.registerCommand(ACCEPT_NEXT_EDIT, () => nextEdits.accept()),
    vscode.commands.registerCommand(DISMISS_NEXT_EDIT, () => nextEdits.dismiss()),
    vscode.workspace.onDidChangeTextDocument((event) => {
      // No content changes: only the dirty state changed (a save).
      if (event.contentChanges.length > 0) {
        nextEdits.onDocumentChanged(event.document.uri.toString());
      }
    }),
    vscode.window.onDidChangeActiveTextEditor(() => nextEdits.onActiveEditorChanged()),
    vscode.workspace.onDidCloseTextDocument((document) => nextEdits.onDocumentClosed(document.uri.toString())),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (['nextEdit', 'languages'].some((key) => event.affectsConfiguration(`covey.${key}`))) {
        nextEdits.reset();
      }
      if (SERVER_KEYS.some((key) => event.affectsConfiguration(`covey.${key}`))) {
        channel.info('settings changed; restarting the server');
        void server.restart();
      }
    }),
  );

  // A new interpreter chosen in the Python extension restarts the server (unless the
  // covey.pythonPath setting pins one).
  void pythonExtensionApi()
    .then((api) => {
      const subscription = api?.environments.onDidChangeActiveEnvironmentPath?.(() => {
        if (readSettings(vscode.workspace.getConfiguration('covey')).pythonPath === '') {
          channel.info('Python interpreter changed; restarting the server');
          void server.restart();
        }
      });
      if (subscription) {
        context.subscriptions.push(subscription);
      }
    })
    .catch((error) => channel.warn(`Python extension unavailable: ${message(error)}`));

  void server.start();
  return { controller: server };
}

export function deactivate(): Promise<void> | undefined {
  const server = controller;
  controller = undefined;
  return server?.dispose();
}
