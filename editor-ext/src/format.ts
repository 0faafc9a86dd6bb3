// Number formatting shared by the status bar and the usage view.

export function formatUsd(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  if (value === 0) {
    return '$0';
  }
  const abs = Math.abs(value);
  // Per-call costs of a local model are fractions of a cent; keep two significant digits.
  const digits = abs < 0.01 ? value.toPrecision(2) : value.toFixed(2);
  return `$${Number(digits) === 0 ? '0' : digits}`;
}

export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  return value >= 10000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

/** Savings as a share of the LLM-equivalent cost; the server's ratio wins when it sent one. */
export function savingsRatio(
  ratio: number | null | undefined,
  localUsd: number | null | undefined,
  llmUsd: number | null | undefined,
): number | null {
  if (typeof ratio === 'number' && Number.isFinite(ratio)) {
    return ratio;
  }
  if (typeof llmUsd === 'number' && llmUsd > 0 && typeof localUsd === 'number') {
    return (llmUsd - localUsd) / llmUsd;
  }
  return null;
}

/**
 * A saving in words. From 90% on, a percentage rounds towards "100%" and hides the size of
 * the saving (99.9% and 99.99% are 1,000 and 10,000 times cheaper), so it is said as a ratio
 * of two significant digits: "1,200× cheaper". "saved 100%" only when the local side was free.
 */
export function formatSavings(ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) {
    return '–';
  }
  if (ratio >= 1) {
    return 'saved 100%';
  }
  if (ratio >= 0.9) {
    const times = Number((1 / (1 - ratio)).toPrecision(2));
    return `${times.toLocaleString('en-US')}× cheaper`;
  }
  if (ratio < 0) {
    return `costs ${Math.round(-ratio * 100)}% more`;
  }
  return `saved ${Math.round(ratio * 100)}%`;
}
