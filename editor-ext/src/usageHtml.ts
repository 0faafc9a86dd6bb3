// The "Covey: Show Usage" page, rendered from a covey/usageSummary answer. Pure.
import { UsageRow, UsageSummary } from './protocol';
import { formatMs, formatSavings, formatUsd, savingsRatio } from './format';

export const SINCE_CHOICES: Array<{ value: string; label: string }> = [
  { value: 'today', label: 'Today' },
  { value: '7d', label: 'Last 7 days' },
];

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function cells(row: Partial<UsageRow>, label: string): string {
  const ratio = savingsRatio(row.savingsRatio, row.localCostUsd, row.llmCostUsd);
  return [
    escapeHtml(label),
    String(row.calls ?? 0),
    formatMs(row.p50LatencyMs),
    formatMs(row.p95LatencyMs),
    formatUsd(row.localCostUsd),
    formatUsd(row.llmCostUsd),
    formatSavings(ratio),
  ]
    .map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`))
    .join('');
}

export interface UsagePage {
  since: string;
  summary?: UsageSummary;
  error?: string;
  /** CSP nonce for the page's one script. */
  nonce: string;
  cspSource: string;
}

export function renderUsageHtml(page: UsagePage): string {
  const options = SINCE_CHOICES.map(
    (c) =>
      `<option value="${c.value}"${c.value === page.since ? ' selected' : ''}>${c.label}</option>`,
  ).join('');
  let body: string;
  if (page.error !== undefined) {
    body = `<p class="error">Could not read usage: ${escapeHtml(page.error)}</p>`;
  } else if (!page.summary || page.summary.rows.length === 0) {
    body = '<p class="empty">No model calls in this period.</p>';
  } else {
    const rows = page.summary.rows.map((r) => `<tr>${cells(r, r.task)}</tr>`).join('\n');
    body = `<table>
<thead><tr><th>Task</th><th>Calls</th><th>p50</th><th>p95</th><th>Local cost</th><th>LLM-equivalent</th><th>Saving</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr>${cells(page.summary.total, 'Total')}</tr></tfoot>
</table>`;
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${page.cspSource} 'unsafe-inline'; script-src 'nonce-${page.nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Covey usage</title>
<style>
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 1rem; }
  table { border-collapse: collapse; margin-top: 1rem; }
  th, td { padding: 0.3rem 0.8rem; text-align: right; border-bottom: 1px solid var(--vscode-panel-border); }
  th[scope="row"], thead th:first-child { text-align: left; }
  tfoot th, tfoot td { font-weight: bold; }
  .error { color: var(--vscode-errorForeground); }
</style>
</head>
<body>
<h1>Covey usage</h1>
<label>Period <select id="since">${options}</select></label>
${body}
<script nonce="${page.nonce}">
  const vscode = acquireVsCodeApi();
  document.getElementById('since').addEventListener('change', (e) => {
    vscode.postMessage({ since: e.target.value });
  });
</script>
</body>
</html>`;
}
