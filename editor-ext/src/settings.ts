// Settings → initializationOptions, plus the few the extension keeps to itself. Pure: reads through a tiny interface so tests need no VS Code.

export interface ConfigReader {
  get<T>(key: string): T | undefined;
}

export interface CoveySettings {
  pythonPath: string;
  engineUrl: string | null;
  /** Unset: the server decides by the client (none for VS Code, which waits itself). */
  debounceMs: number | undefined;
  languages: string[];
  storeText: boolean;
  baseline: { url: string | null; model: string | null; apiKeyEnv: string };
  specialists: Record<string, Record<string, unknown>>;
  /** The extension's own: never sent to the server (see CLIENT_KEYS). */
  nextEdit: { enabled: boolean };
}

export const DEFAULTS: CoveySettings = {
  pythonPath: '',
  engineUrl: null,
  // Not sent: the server's automatic debounce is none for VS Code, which waits about 100 ms
  // before it asks for ghost text (a second wait made the server's part 82 ms, not 9).
  debounceMs: undefined,
  languages: ['python', 'javascript', 'typescript'],
  storeText: false,
  baseline: { url: null, model: null, apiKeyEnv: 'COVEY_BASELINE_API_KEY' },
  specialists: {},
  nextEdit: { enabled: true },
};

/** Setting keys (under `covey.`) whose change needs a server restart. */
export const SERVER_KEYS = [
  'pythonPath',
  'engine',
  'debounceMs',
  'languages',
  'storeText',
  'baseline',
  'specialists',
];

/** Setting keys (under `covey.`) the extension reads alone: not sent, no restart on change
 * (`trace.server` is read by the language client). */
export const CLIENT_KEYS = ['nextEdit', 'trace'];

function text(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDebounce(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Reads `covey.*`; wrong types fall back to the defaults (the server validates again). */
export function readSettings(config: ConfigReader): CoveySettings {
  const debounce = config.get<unknown>('debounceMs');
  const languages = config.get<unknown>('languages');
  const specialists = config.get<unknown>('specialists');
  return {
    pythonPath: text(config.get('pythonPath')) ?? DEFAULTS.pythonPath,
    engineUrl: text(config.get('engine.url')),
    debounceMs: isDebounce(debounce) ? debounce : DEFAULTS.debounceMs,
    languages:
      Array.isArray(languages) && languages.every((l) => typeof l === 'string')
        ? (languages as string[])
        : DEFAULTS.languages,
    storeText: config.get<boolean>('storeText') === true,
    baseline: {
      url: text(config.get('baseline.url')),
      model: text(config.get('baseline.model')),
      apiKeyEnv: text(config.get('baseline.apiKeyEnv')) ?? DEFAULTS.baseline.apiKeyEnv,
    },
    specialists: isRecord(specialists)
      ? (Object.fromEntries(
          Object.entries(specialists).filter(([, v]) => isRecord(v)),
        ) as Record<string, Record<string, unknown>>)
      : {},
    nextEdit: { enabled: config.get<unknown>('nextEdit.enabled') !== false },
  };
}

/** The shape docs/lsp-protocol.md gives for initializationOptions. */
export function toInitializationOptions(s: CoveySettings): Record<string, unknown> {
  return {
    // No URL: the server uses the specialists table's engine, else the one Covey manages.
    engine: { url: s.engineUrl },
    // Only a number the user set; without one the server picks by the client.
    ...(isDebounce(s.debounceMs) ? { debounceMs: s.debounceMs } : {}),
    languages: s.languages,
    storeText: s.storeText,
    baseline: { ...s.baseline },
    specialists: s.specialists,
  };
}

export interface DocumentFilter {
  scheme: string;
  language: string;
}

export function documentSelector(languages: string[]): DocumentFilter[] {
  return languages.flatMap((language) => [
    { scheme: 'file', language },
    { scheme: 'untitled', language },
  ]);
}
