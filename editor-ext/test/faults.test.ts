import { describe, expect, it } from 'vitest';
import { FailureReporter, OPEN_LOG, RestartPolicy } from '../src/faults';

describe('FailureReporter', () => {
  it('shows one notification per episode, with a button that opens the log', async () => {
    const shown: Array<[string, string[]]> = [];
    let logsOpened = 0;
    const reporter = new FailureReporter(
      async (message, ...actions) => {
        shown.push([message, actions]);
        return OPEN_LOG;
      },
      () => (logsOpened += 1),
    );
    expect(reporter.report('first')).toBe(true);
    expect(reporter.report('second')).toBe(false);
    expect(reporter.report('third')).toBe(false);
    await new Promise((r) => setTimeout(r, 0));
    expect(shown).toEqual([['first', [OPEN_LOG]]]);
    expect(logsOpened).toBe(1);

    reporter.reset();
    expect(reporter.report('after a good start')).toBe(true);
  });

  it('does not open the log when dismissed', async () => {
    let logsOpened = 0;
    const reporter = new FailureReporter(async () => undefined, () => (logsOpened += 1));
    reporter.report('x');
    await new Promise((r) => setTimeout(r, 0));
    expect(logsOpened).toBe(0);
  });
});

describe('RestartPolicy', () => {
  it('never restarts a server that never ran', () => {
    expect(new RestartPolicy().onClosed(false, 0)).toBe('give-up');
  });

  it('gives up on a crash loop and forgives old crashes', () => {
    const policy = new RestartPolicy(2, 1000);
    expect(policy.onClosed(true, 0)).toBe('restart');
    expect(policy.onClosed(true, 10)).toBe('restart');
    expect(policy.onClosed(true, 20)).toBe('give-up');
    expect(policy.onClosed(true, 5000)).toBe('restart');
  });
});
