import { describe, expect, it } from 'vitest';
import { formatMs, formatSavings, formatUsd, savingsRatio } from '../src/format';
import { renderStatus } from '../src/statusModel';

describe('formatting', () => {
  it('keeps fractions of a cent readable', () => {
    expect(formatUsd(0)).toBe('$0');
    expect(formatUsd(0.000312)).toBe('$0.00031');
    expect(formatUsd(1.5)).toBe('$1.50');
    expect(formatUsd(undefined)).toBe('–');
  });

  it('formats latency', () => {
    expect(formatMs(212.4)).toBe('212 ms');
    expect(formatMs(12500)).toBe('12.5 s');
  });

  it('says a saving of 90% or more as a ratio, never rounding it up to 100%', () => {
    expect(formatSavings(0.999)).toBe('1,000× cheaper');
    expect(formatSavings(savingsRatio(undefined, 0.00001, 0.012))).toBe('1,200× cheaper');
    expect(formatSavings(0.92)).toBe('13× cheaper');
    expect(formatSavings(0.85)).toBe('saved 85%');
    expect(formatSavings(0.0)).toBe('saved 0%');
    expect(formatSavings(-0.2)).toBe('costs 20% more');
    expect(formatSavings(1)).toBe('saved 100%'); // the local side cost nothing
    expect(formatSavings(null)).toBe('–');
  });

  it('computes savings when the server sent none', () => {
    expect(savingsRatio(undefined, 0.1, 1)).toBeCloseTo(0.9);
    expect(savingsRatio(0.5, 0.1, 1)).toBe(0.5);
    expect(savingsRatio(undefined, 0.1, 0)).toBeNull();
  });
});

describe('renderStatus', () => {
  it('shows the last latency and today’s cost and savings', () => {
    const view = renderStatus({
      server: 'running',
      engine: { state: 'up', device: 'cpu', url: 'http://127.0.0.1:8765' },
      lastLatencyMs: 212,
      lastTask: 'completion',
      today: { calls: 4, localCostUsd: 0.0002, llmCostUsd: 0.001 },
    });
    expect(view.text).toBe('$(sparkle) Covey 212 ms · $0.00020 (saved 80%)');
    expect(view.tooltip).toContain('Engine: up (cpu, http://127.0.0.1:8765)');
    expect(view.tooltip).toContain('Last call: 212 ms (completion)');
    const costed = renderStatus({ server: 'running', engine: { state: 'up' }, lastLatencyMs: 90, lastCostUsd: 0.00002, lastLlmCostUsd: 0.0004 });
    expect(costed.tooltip).toContain('Last call: 90 ms, $0.000020 local vs $0.00040 LLM-equivalent');
    expect(view.warning).toBe(false);
  });

  it('says a 99.9% saving as "1,200× cheaper", not "saved 100%"', () => {
    const today = { calls: 40, localCostUsd: 0.00001, llmCostUsd: 0.012 };
    const view = renderStatus({ server: 'running', engine: { state: 'up' }, lastLatencyMs: 212, today });
    expect(view.text).toBe('$(sparkle) Covey 212 ms · $0.000010 (1,200× cheaper)');
    expect(view.tooltip).toContain('Cost today: $0.000010 local vs $0.01 LLM-equivalent (1,200× cheaper)');
    const sent = renderStatus({ server: 'running', engine: { state: 'up' }, today: { ...today, savingsRatio: 0.999 } });
    expect(sent.text).toBe('$(sparkle) Covey $0.000010 (1,000× cheaper)');
  });

  it('says when the engine is down, with the reason in the tooltip', () => {
    const view = renderStatus({ server: 'running', engine: { state: 'down', reason: 'connection refused' } });
    expect(view.text).toBe('$(circle-slash) Covey: engine down');
    expect(view.tooltip).toContain('connection refused');
    expect(view.warning).toBe(true);
  });

  it('says when the server failed', () => {
    expect(renderStatus({ server: 'failed' }).text).toBe('$(error) Covey: server failed');
  });

  it('shows a plain name before any call', () => {
    expect(renderStatus({ server: 'running', engine: { state: 'remote' } }).text).toBe('$(sparkle) Covey');
  });
});
