// Server faults reach the user as ONE notification per episode, never a storm.

export const OPEN_LOG = 'Open Log';

export type ShowError = (message: string, ...actions: string[]) => PromiseLike<string | undefined>;

export class FailureReporter {
  private shown = false;

  constructor(
    private readonly showError: ShowError,
    private readonly openLog: () => void,
  ) {}

  /** Shows the message unless one is already out for this episode. Returns whether shown. */
  report(message: string): boolean {
    if (this.shown) {
      return false;
    }
    this.shown = true;
    void Promise.resolve(this.showError(message, OPEN_LOG)).then((choice) => {
      if (choice === OPEN_LOG) {
        this.openLog();
      }
    });
    return true;
  }

  /** A successful start ends the episode; the next failure may notify again. */
  reset(): void {
    this.shown = false;
  }
}

/**
 * Decides whether a server that exited should be restarted: only one that once ran, and
 * at most `maxRestarts` times within `windowMs` (a crash loop gives up).
 */
export class RestartPolicy {
  private restarts: number[] = [];

  constructor(
    private readonly maxRestarts = 3,
    private readonly windowMs = 3 * 60 * 1000,
  ) {}

  onClosed(everRan: boolean, now: number): 'restart' | 'give-up' {
    if (!everRan) {
      return 'give-up';
    }
    this.restarts = this.restarts.filter((t) => now - t < this.windowMs);
    if (this.restarts.length >= this.maxRestarts) {
      return 'give-up';
    }
    this.restarts.push(now);
    return 'restart';
  }

  reset(): void {
    this.restarts = [];
  }
}
