// What the status bar says, as a pure function of what the extension knows.
import { EngineStatus, UsageRow } from './protocol';
import { formatMs, formatSavings, formatUsd, savingsRatio } from './format';

export type ServerState = 'starting' | 'running' | 'stopped' | 'failed';

export interface StatusModel {
  server: ServerState;
  engine?: EngineStatus;
  lastLatencyMs?: number;
  lastTask?: string;
  lastCostUsd?: number | null;
  lastLlmCostUsd?: number | null;
  today?: Partial<UsageRow>;
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** true when the item should use the warning colours. */
  warning: boolean;
}

function engineLine(engine: EngineStatus | undefined): string {
  if (!engine) {
    return 'Engine: unknown';
  }
  const where = [engine.device, engine.url].filter(Boolean).join(', ');
  const reason = engine.reason ? ` — ${engine.reason}` : '';
  return `Engine: ${engine.state}${where ? ` (${where})` : ''}${reason}`;
}

function usageLines(today: Partial<UsageRow> | undefined): string[] {
  if (!today) {
    return [];
  }
  const ratio = savingsRatio(today.savingsRatio, today.localCostUsd, today.llmCostUsd);
  return [
    `Today: ${today.calls ?? 0} calls, p50 ${formatMs(today.p50LatencyMs)}, p95 ${formatMs(today.p95LatencyMs)}`,
    `Cost today: ${formatUsd(today.localCostUsd)} local vs ${formatUsd(today.llmCostUsd)} LLM-equivalent (${formatSavings(ratio)})`,
  ];
}

export function renderStatus(m: StatusModel): StatusView {
  if (m.server === 'failed') {
    return {
      text: '$(error) Covey: server failed',
      tooltip: 'The Covey language server could not start. Click for the log.',
      warning: true,
    };
  }
  if (m.server === 'stopped') {
    return { text: '$(circle-slash) Covey: off', tooltip: 'The Covey language server is stopped.', warning: false };
  }
  if (m.server === 'starting') {
    return { text: '$(sync~spin) Covey', tooltip: 'Starting the Covey language server…', warning: false };
  }
  const state = m.engine?.state;
  const tooltip = [engineLine(m.engine), ...usageLines(m.today)];
  if (m.lastLatencyMs !== undefined) {
    const cost =
      typeof m.lastCostUsd === 'number'
        ? `, ${formatUsd(m.lastCostUsd)} local vs ${formatUsd(m.lastLlmCostUsd)} LLM-equivalent`
        : '';
    tooltip.push(`Last call: ${formatMs(m.lastLatencyMs)}${m.lastTask ? ` (${m.lastTask})` : ''}${cost}`);
  }
  tooltip.push('Click for usage.');
  if (state === 'down') {
    return { text: '$(circle-slash) Covey: engine down', tooltip: tooltip.join('\n'), warning: true };
  }
  if (state === 'starting') {
    return { text: '$(sync~spin) Covey: engine starting', tooltip: tooltip.join('\n'), warning: false };
  }
  const facts: string[] = [];
  if (m.lastLatencyMs !== undefined) {
    facts.push(formatMs(m.lastLatencyMs));
  }
  if (m.today) {
    const ratio = savingsRatio(m.today.savingsRatio, m.today.localCostUsd, m.today.llmCostUsd);
    facts.push(
      ratio === null
        ? formatUsd(m.today.localCostUsd)
        : `${formatUsd(m.today.localCostUsd)} (${formatSavings(ratio)})`,
    );
  }
  const text = ['$(sparkle) Covey', facts.join(' · ')].filter(Boolean).join(' ');
  return { text, tooltip: tooltip.join('\n'), warning: false };
}
