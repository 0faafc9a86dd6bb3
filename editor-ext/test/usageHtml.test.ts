import { describe, expect, it } from 'vitest';
import { escapeHtml, renderUsageHtml } from '../src/usageHtml';

const page = { since: 'today', nonce: 'n0nce', cspSource: 'csp' };

describe('renderUsageHtml', () => {
  it('renders one row per task and the total', () => {
    const html = renderUsageHtml({
      ...page,
      summary: {
        rows: [
          { task: 'completion', calls: 10, p50LatencyMs: 120, p95LatencyMs: 300, localCostUsd: 0.0002, llmCostUsd: 0.002, savingsRatio: 0.9 },
          { task: 'doc', calls: 1, p50LatencyMs: 900, p95LatencyMs: 900, localCostUsd: 0.0001, llmCostUsd: 0.0004 },
        ],
        total: { calls: 11, localCostUsd: 0.0003, llmCostUsd: 0.0024 },
      },
    });
    expect(html).toContain('<th scope="row">completion</th><td>10</td><td>120 ms</td><td>300 ms</td><td>$0.00020</td><td>$0.0020</td><td>10× cheaper</td>');
    expect(html).toContain('<th scope="row">doc</th><td>1</td>');
    expect(html).toContain('<td>saved 75%</td>'); // doc: computed from costs
    expect(html).toContain('<tfoot><tr><th scope="row">Total</th><td>11</td>');
    expect(html).toContain('<option value="today" selected>');
    expect(html).toContain("script-src 'nonce-n0nce'");
  });

  it('never rounds a 99.9% saving up to 100%', () => {
    const row = { calls: 40, localCostUsd: 0.00001, llmCostUsd: 0.012 };
    const html = renderUsageHtml({ ...page, summary: { rows: [{ task: 'completion', ...row }], total: row } });
    expect(html).toContain('<td>1,200× cheaper</td>');
    expect(html).not.toContain('100%');
  });

  it('escapes what the server sent', () => {
    const html = renderUsageHtml({ ...page, summary: { rows: [{ task: '<img onerror=x>', calls: 1 }], total: {} } });
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img onerror=x&gt;');
    expect(escapeHtml(`"'&`)).toBe('&quot;&#39;&amp;');
  });

  it('says when there is nothing, and when the request failed', () => {
    expect(renderUsageHtml({ ...page, summary: { rows: [], total: {} } })).toContain('No model calls in this period.');
    expect(renderUsageHtml({ ...page, error: 'server <down>' })).toContain('Could not read usage: server &lt;down&gt;');
  });
});
