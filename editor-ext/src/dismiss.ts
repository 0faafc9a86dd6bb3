// What only the editor knows about a suggestion: the user dismissed it (Escape). The
// server infers the rest (typing through, word-by-word accepts) from document changes.
import { ServerCommands } from './protocol';

interface Shown {
  version: number;
  callId: string;
}

/** The call behind an inline answer: its first item's `covey.accept` argument. */
export function acceptedCallId(answer: unknown): string | undefined {
  const items = Array.isArray(answer) ? answer : (answer as { items?: unknown } | null)?.items;
  const first = Array.isArray(items) ? (items[0] as { command?: unknown } | undefined) : undefined;
  const command = first?.command as { command?: unknown; arguments?: unknown[] } | undefined;
  const callId = command?.arguments?.[0];
  return command?.command === ServerCommands.accept && typeof callId === 'string' ? callId : undefined;
}

/** The last Covey suggestion each document got, at the version it was made for. */
export class ShownSuggestions {
  private readonly byUri = new Map<string, Shown>();

  record(uri: string, version: number, answer: unknown): void {
    const callId = acceptedCallId(answer);
    if (callId) {
      this.byUri.set(uri, { version, callId });
    } else {
      this.byUri.delete(uri);
    }
  }

  /** The suggestion still on screen in `uri` if nothing was edited since it came (an
   * accept or a keystroke changes the version); forgotten once taken. */
  take(uri: string, version: number): string | undefined {
    const shown = this.byUri.get(uri);
    this.byUri.delete(uri);
    return shown?.version === version ? shown.callId : undefined;
  }
}

export interface DismissDeps {
  hide(): PromiseLike<unknown>;
  activeDocument(): { uri: string; version: number } | undefined;
  reject(callId: string): PromiseLike<unknown>;
}

/** Escape over ghost text: hide it as VS Code would, and tell the server it was rejected. */
export async function dismiss(deps: DismissDeps, shown: ShownSuggestions): Promise<void> {
  const doc = deps.activeDocument();
  await deps.hide();
  const callId = doc && shown.take(doc.uri, doc.version);
  if (callId) {
    await deps.reject(callId);
  }
}
