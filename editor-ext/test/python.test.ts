import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { expandPath, interpreterFromPythonExtension, PythonExtensionApi, resolveInterpreter } from '../src/python';

describe('resolveInterpreter', () => {
  it('prefers the setting over the Python extension', async () => {
    let asked = false;
    const found = await resolveInterpreter('/opt/py/bin/python', '/ws', async () => {
      asked = true;
      return '/from/ext';
    });
    expect(found).toEqual({ path: '/opt/py/bin/python', source: 'setting' });
    expect(asked).toBe(false);
  });

  it('uses the Python extension when the setting is empty', async () => {
    expect(await resolveInterpreter('', '/ws', async () => '/ws/.venv/bin/python')).toEqual({
      path: '/ws/.venv/bin/python',
      source: 'python-extension',
    });
  });

  it('falls back to python3 when the extension is missing or fails', async () => {
    expect(await resolveInterpreter('', undefined, async () => undefined)).toEqual({ path: 'python3', source: 'default' });
    expect(
      await resolveInterpreter('', undefined, async () => {
        throw new Error('extension crashed');
      }),
    ).toEqual({ path: 'python3', source: 'default' });
  });

  it('expands ${workspaceFolder} and ~', () => {
    expect(expandPath('${workspaceFolder}/.venv/bin/python', '/ws')).toBe('/ws/.venv/bin/python');
    expect(expandPath('~/py/bin/python', undefined)).toBe(path.join(os.homedir(), 'py/bin/python'));
    expect(expandPath('~/py/bin/python', '/ws')).toBe(path.join(os.homedir(), 'py/bin/python'));
  });

  it('resolves a relative path against the workspace folder, as the Python extension does', async () => {
    expect(await resolveInterpreter('.venv/bin/python', '/ws', async () => undefined)).toEqual({
      path: '/ws/.venv/bin/python',
      source: 'setting',
    });
    expect(expandPath(' ./env/bin/python ', '/ws')).toBe('/ws/env/bin/python');
    expect(expandPath('../shared/bin/python', '/home/me/ws')).toBe('/home/me/shared/bin/python');
    expect(expandPath('/opt/py/bin/python', '/ws')).toBe('/opt/py/bin/python');
  });

  it('leaves a bare command for PATH, and a relative path without a workspace', () => {
    expect(expandPath('python3', '/ws')).toBe('python3');
    expect(expandPath('.venv/bin/python', undefined)).toBe('.venv/bin/python');
  });
});

describe('interpreterFromPythonExtension', () => {
  const api = (resolved: string | undefined): PythonExtensionApi => ({
    environments: {
      getActiveEnvironmentPath: () => ({ id: 'env', path: '/env/path' }),
      resolveEnvironment: async () => (resolved ? { executable: { uri: { fsPath: resolved } } } : undefined),
    },
  });

  it('returns the resolved executable', async () => {
    expect(await interpreterFromPythonExtension(api('/env/bin/python3.11'))).toBe('/env/bin/python3.11');
  });

  it('falls back to the active path when resolving says nothing', async () => {
    expect(await interpreterFromPythonExtension(api(undefined))).toBe('/env/path');
  });

  it('is undefined without the extension', async () => {
    expect(await interpreterFromPythonExtension(undefined)).toBeUndefined();
  });
});
