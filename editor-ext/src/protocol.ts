// Covey's own LSP messages (docs/lsp-protocol.md). Everything else is standard LSP.
import type { Position, Range, WorkspaceEdit } from 'vscode-languageclient/node';

export const Methods = {
  callFinished: 'covey/callFinished',
  engineStatus: 'covey/engineStatus',
  usageSummary: 'covey/usageSummary',
  nextEdit: 'covey/nextEdit',
} as const;

export const ServerCommands = {
  accept: 'covey.accept',
  reject: 'covey.reject',
  refactor: 'covey.refactor',
  generateDocstring: 'covey.generateDocstring',
  engineStart: 'covey.engineStart',
  engineStop: 'covey.engineStop',
} as const;

export type EngineState = 'up' | 'down' | 'starting' | 'remote';

export interface EngineStatus {
  state: EngineState;
  url?: string | null;
  device?: string | null;
  models?: string[] | null;
  reason?: string | null;
}

export interface CallFinished {
  callId: string;
  task: string;
  specialist: string;
  status: string;
  ttftMs?: number | null;
  latencyMs?: number | null;
  promptTokens?: number | null;
  completionTokens?: number | null;
  localCostUsd?: number | null;
  llmCostUsd?: number | null;
  source?: 'specialist' | 'baseline';
}

export type UsageSince = 'today' | '7d' | string;

export interface UsageRow {
  task: string;
  calls: number;
  p50LatencyMs?: number | null;
  p95LatencyMs?: number | null;
  localCostUsd?: number | null;
  llmCostUsd?: number | null;
  savingsRatio?: number | null;
}

export interface UsageSummary {
  rows: UsageRow[];
  total: Partial<UsageRow>;
}

export interface NextEditParams {
  textDocument: { uri: string };
  /** The cursor. */
  position: Position;
}

/** The answer to `covey/nextEdit` (`null`: nothing to suggest). */
export interface NextEdit {
  callId: string;
  uri: string;
  /** Whole lines: from character 0 of the first line to change to character 0 of the
   * line after the last one (or the document's end). Empty where lines are only inserted. */
  range: Range;
  newText: string;
  /** The same change as a WorkspaceEdit, for editors that apply those as they come. */
  edit: WorkspaceEdit;
}
