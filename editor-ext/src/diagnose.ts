// Why the server did not start, in words a user can act on: try importing it.
import { execFile } from 'child_process';
import { SERVER_MODULE } from './serverController';

/** The last line of what `python -c "import covey_server"` printed when it failed. */
export function importProblem(python: string, timeoutMs = 15000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(python, ['-c', `import ${SERVER_MODULE}`], { timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (!error) {
        resolve(undefined);
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        resolve(`${python} does not exist`);
        return;
      }
      const lines = String(stderr).trim().split('\n').filter((l) => l.trim() !== '');
      resolve(lines[lines.length - 1] ?? error.message);
    });
  });
}

export function startFailureMessage(python: string, error: string, problem: string | undefined): string {
  const why = problem ?? error;
  return (
    `Covey: the language server failed to start with ${python}: ${why}. ` +
    'Install Covey in that environment (pip install covey) or choose another with the covey.pythonPath setting.'
  );
}
