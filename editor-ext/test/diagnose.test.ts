import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { importProblem, startFailureMessage } from '../src/diagnose';

const made: string[] = [];
afterAll(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** An executable standing in for a Python interpreter. */
function fakePython(body: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'covey-fake-python-'));
  made.push(dir);
  const file = path.join(dir, 'python3');
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('importProblem', () => {
  it('names a missing interpreter', async () => {
    expect(await importProblem('/nonexistent/bin/python3')).toBe('/nonexistent/bin/python3 does not exist');
  });

  it('gives the last line of the import error', async () => {
    const python = fakePython('echo "Traceback (most recent call last):" >&2\n' +
      'echo "ModuleNotFoundError: No module named \'covey_server\'" >&2\nexit 1');
    expect(await importProblem(python)).toBe("ModuleNotFoundError: No module named 'covey_server'");
  });

  it('is undefined when the import works', async () => {
    expect(await importProblem(fakePython('exit 0'))).toBeUndefined();
  });
});

describe('startFailureMessage', () => {
  it('prefers the diagnosis over the transport error', () => {
    const text = startFailureMessage('/usr/bin/python3', 'connection got disposed', "No module named 'covey_server'");
    expect(text).toContain("/usr/bin/python3: No module named 'covey_server'");
    expect(text).not.toContain('disposed');
    expect(startFailureMessage('py', 'spawn py ENOENT', undefined)).toContain('py: spawn py ENOENT');
  });
});
