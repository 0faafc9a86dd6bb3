// Which Python runs the server: the setting, then the Python extension's active
// interpreter, then `python3` (vscode-python-tools-extension-template's order).
import * as os from 'os';
import * as path from 'path';

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface Interpreter {
  path: string;
  source: InterpreterSource;
}

/** The slice of the ms-python.python API that Covey uses. */
export interface PythonExtensionApi {
  environments: {
    getActiveEnvironmentPath(resource?: unknown): { id: string; path: string };
    resolveEnvironment?(
      env: { id: string; path: string } | string,
    ): Promise<{ executable: { uri?: { fsPath: string } } } | undefined>;
    onDidChangeActiveEnvironmentPath?(listener: () => unknown): { dispose(): unknown };
  };
}

export const DEFAULT_PYTHON = 'python3';

/**
 * Expands `~` and `${workspaceFolder}` the way users write them in settings, and resolves a
 * relative path (`.venv/bin/python`) against the workspace folder, as the Python extension
 * does: spawned as it is, it would be looked for in the extension host's working directory
 * and fail with ENOENT. A bare command (`python3`) stays as it is, for a lookup on PATH.
 */
export function expandPath(value: string, workspaceFolder: string | undefined): string {
  let out = value.trim();
  if (workspaceFolder) {
    out = out.split('${workspaceFolder}').join(workspaceFolder);
  }
  if (out === '~' || out.startsWith('~/') || out.startsWith('~\\')) {
    out = path.join(os.homedir(), out.slice(1));
  }
  const hasSeparator = out.includes('/') || out.includes(path.sep);
  if (workspaceFolder && hasSeparator && !path.isAbsolute(out)) {
    out = path.resolve(workspaceFolder, out);
  }
  return out;
}

/** Asks the Python extension for the active interpreter; undefined when it can't say. */
export async function interpreterFromPythonExtension(
  api: PythonExtensionApi | undefined,
  resource?: unknown,
): Promise<string | undefined> {
  if (!api?.environments) {
    return undefined;
  }
  const active = api.environments.getActiveEnvironmentPath(resource);
  if (api.environments.resolveEnvironment) {
    const resolved = await api.environments.resolveEnvironment(active);
    const fsPath = resolved?.executable?.uri?.fsPath;
    if (fsPath) {
      return fsPath;
    }
  }
  return active?.path || undefined;
}

export async function resolveInterpreter(
  settingPath: string,
  workspaceFolder: string | undefined,
  fromPythonExtension: () => Promise<string | undefined>,
): Promise<Interpreter> {
  if (settingPath.trim() !== '') {
    return { path: expandPath(settingPath, workspaceFolder), source: 'setting' };
  }
  try {
    const found = await fromPythonExtension();
    if (found) {
      return { path: found, source: 'python-extension' };
    }
  } catch {
    // The Python extension is optional; any failure there means "fall back".
  }
  return { path: DEFAULT_PYTHON, source: 'default' };
}
