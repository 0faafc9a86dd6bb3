import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_KEYS,
  DEFAULTS,
  documentSelector,
  readSettings,
  SERVER_KEYS,
  toInitializationOptions,
} from '../src/settings';

const reader = (values: Record<string, unknown>) => ({
  get: <T>(key: string) => values[key] as T | undefined,
});

describe('readSettings', () => {
  it('gives the defaults when nothing is set', () => {
    expect(readSettings(reader({}))).toEqual(DEFAULTS);
  });

  it('reads every setting', () => {
    const s = readSettings(
      reader({
        pythonPath: ' /venv/bin/python ',
        'engine.url': 'http://gpu-box:8000',
        debounceMs: 120,
        languages: ['python'],
        storeText: true,
        'baseline.url': 'https://llm.example/v1',
        'baseline.model': 'big',
        specialists: { completion: { maxTokens: 32 } },
        'nextEdit.enabled': false,
      }),
    );
    expect(s.pythonPath).toBe('/venv/bin/python');
    expect(s.engineUrl).toBe('http://gpu-box:8000');
    expect(s.debounceMs).toBe(120);
    expect(s.languages).toEqual(['python']);
    expect(s.storeText).toBe(true);
    expect(s.baseline).toEqual({ url: 'https://llm.example/v1', model: 'big', apiKeyEnv: 'COVEY_BASELINE_API_KEY' });
    expect(s.specialists).toEqual({ completion: { maxTokens: 32 } });
    expect(s.nextEdit).toEqual({ enabled: false });
  });

  it('falls back on values of the wrong type', () => {
    const s = readSettings(
      reader({ debounceMs: -5, languages: 'python', specialists: { completion: 3, doc: { maxTokens: 9 } }, 'engine.url': '  ' }),
    );
    expect(s.debounceMs).toBeUndefined();
    expect(s.languages).toEqual(DEFAULTS.languages);
    expect(s.specialists).toEqual({ doc: { maxTokens: 9 } });
    expect(s.engineUrl).toBeNull();
  });
});

describe('toInitializationOptions', () => {
  it('has the shape of docs/lsp-protocol.md', () => {
    expect(toInitializationOptions(DEFAULTS)).toEqual({
      engine: { url: null },
      languages: ['python', 'javascript', 'typescript'],
      storeText: false,
      baseline: { url: null, model: null, apiKeyEnv: 'COVEY_BASELINE_API_KEY' },
      specialists: {},
    });
  });

  it('sends no debounce unless one is set, so the server picks it by the client', () => {
    expect(toInitializationOptions(DEFAULTS)).not.toHaveProperty('debounceMs');
    expect(toInitializationOptions(readSettings(reader({ debounceMs: null })))).not.toHaveProperty('debounceMs');
    expect(toInitializationOptions({ ...DEFAULTS, debounceMs: 0 }).debounceMs).toBe(0);
    expect(toInitializationOptions({ ...DEFAULTS, debounceMs: 30 }).debounceMs).toBe(30);
  });

  it("keeps the extension's own settings to itself", () => {
    expect(toInitializationOptions({ ...DEFAULTS, nextEdit: { enabled: false } })).toEqual(
      toInitializationOptions(DEFAULTS),
    );
    expect(toInitializationOptions(DEFAULTS)).not.toHaveProperty('nextEdit');
  });

  it('passes a remote engine URL through', () => {
    const opts = toInitializationOptions({ ...DEFAULTS, engineUrl: 'http://10.0.0.2:8000' });
    expect(opts.engine).toEqual({ url: 'http://10.0.0.2:8000' });
  });
});

describe('documentSelector', () => {
  it('covers files and untitled buffers of each language', () => {
    expect(documentSelector(['python'])).toEqual([
      { scheme: 'file', language: 'python' },
      { scheme: 'untitled', language: 'python' },
    ]);
  });
});

describe('package.json', () => {
  // What VS Code's configuration returns when nothing is set: the manifest's defaults.
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const properties: Record<string, { default: unknown }> = manifest.contributes.configuration.properties;
  const defaults = Object.fromEntries(
    Object.entries(properties).map(([key, schema]) => [key.replace(/^covey\./, ''), schema.default]),
  );

  it('declares the defaults the extension falls back to', () => {
    // The server's side of the same check is tests/unit/test_editor_settings_defaults.py.
    expect(readSettings(reader(defaults))).toEqual(DEFAULTS);
    expect(defaults.debounceMs).toBeNull(); // automatic: the server decides by the client
    expect(DEFAULTS.debounceMs).toBeUndefined();
  });

  it("restarts the server for every setting it declares but the extension's own", () => {
    const top = new Set(Object.keys(defaults).map((key) => key.split('.')[0]));
    for (const key of CLIENT_KEYS) {
      expect(top.delete(key)).toBe(true);
    }
    expect([...top].sort()).toEqual([...SERVER_KEYS].sort());
  });
});
