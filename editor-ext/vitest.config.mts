import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Unit tests run without VS Code: `vscode` resolves to a small stub.
export default defineConfig({
  resolve: {
    alias: { vscode: fileURLToPath(new URL('./test/vscodeStub.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
