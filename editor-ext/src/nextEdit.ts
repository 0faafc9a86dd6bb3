// Next-edit suggestions: after a pause in typing, ask the server for the edit the last ones
// imply, and show it until Tab applies it, Escape dismisses it or other edits make it moot.
// VS Code comes in through `NextEditDeps` and `NextEditScreen` (`nextEditView.ts`).
import * as vscode from 'vscode';
import type { Position } from 'vscode-languageclient/node';
import { NextEdit, NextEditParams, ServerCommands } from './protocol';
import { PreviewLine, previewLines, replacementEnd } from './nextEditPreview';
import { CoveySettings } from './settings';

/** The context key that turns on the Tab and Escape bindings (package.json). */
export const NEXT_EDIT_PENDING = 'covey.nextEditPending';
export const ACCEPT_NEXT_EDIT = 'covey.acceptNextEdit';
export const DISMISS_NEXT_EDIT = 'covey.dismissNextEdit';

/** The server's documents (`documentSelector` in settings.ts): it knows no others. */
const SERVED_SCHEMES = new Set(['file', 'untitled']);

/** The active editor, as the controller needs it. */
export interface EditorSnapshot {
  uri: string;
  scheme: string;
  languageId: string;
  version: number;
  cursor: Position;
}

export interface NextEditDeps {
  activeEditor(): EditorSnapshot | undefined;
  settings(): Pick<CoveySettings, 'languages' | 'nextEdit'>;
  request(params: NextEditParams, token: vscode.CancellationToken): PromiseLike<unknown>;
  /** A server command whose answer nobody waits for (`ServerController.notifyServer`). */
  notifyServer(command: string, args: unknown[]): PromiseLike<unknown>;
  log: { warn(message: string): void };
  /** The pause after the last change before asking. */
  delayMs?: number;
}

/** What the user sees, all in the active editor. */
export interface NextEditScreen {
  show(lines: PreviewLine[]): void;
  clear(): void;
  setPending(pending: boolean): void;
  /** Applies the edit to the document `uri`; false when VS Code refused it. */
  apply(uri: string, edit: NextEdit): PromiseLike<boolean>;
  /** Moves the cursor there and scrolls it into view. */
  moveCursor(position: Position): void;
}

interface Pending {
  uri: string;
  edit: NextEdit;
}

interface InFlight {
  uri: string;
  tokens: vscode.CancellationTokenSource;
}

export const DEFAULT_DELAY_MS = 150;

function isPosition(value: unknown): value is Position {
  const p = value as Position | null;
  return typeof p?.line === 'number' && typeof p.character === 'number';
}

/** The server's answer when it suggests something; anything else suggests nothing. */
export function isNextEdit(answer: unknown): answer is NextEdit {
  const a = answer as Partial<NextEdit> | null;
  return (
    typeof a?.callId === 'string' &&
    typeof a.newText === 'string' &&
    isPosition(a.range?.start) &&
    isPosition(a.range?.end)
  );
}

/** Server and client may escape a URI differently (`c%3A` or `c:`); the text is the same. */
function sameUri(a: string, b: string): boolean {
  const decoded = (uri: string) => {
    try {
      return decodeURIComponent(uri);
    } catch {
      return uri;
    }
  };
  return a === b || decoded(a) === decoded(b);
}

export class NextEdits {
  private pending: Pending | undefined;
  private shown = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: InFlight | undefined;
  private lastFailure: string | undefined;

  constructor(
    private readonly deps: NextEditDeps,
    private readonly screen: NextEditScreen,
  ) {}

  /** A change to `uri`'s text (not a save or a dirty-state change). */
  onDocumentChanged(uri: string): void {
    if (this.pending?.uri === uri) {
      // Typing elsewhere: the server infers "ignored" from the edits, so no reject.
      this.drop();
    }
    const editor = this.deps.activeEditor();
    if (editor?.uri === uri && this.wanted(editor)) {
      this.schedule();
    }
  }

  onActiveEditorChanged(): void {
    this.stopAsking();
    this.drop();
  }

  onDocumentClosed(uri: string): void {
    if (this.inFlight?.uri === uri) {
      this.stopAsking();
    }
    if (this.pending?.uri === uri) {
      this.drop();
    }
  }

  /** The settings changed: what was asked for under the old ones no longer counts. */
  reset(): void {
    this.stopAsking();
    this.drop();
  }

  /** Tab: apply the edit, put the cursor after it, then tell the server it was taken. */
  async accept(): Promise<void> {
    // Taken before applying: the edit's own change must not drop it as "typing elsewhere".
    const pending = this.take();
    if (!pending) {
      return;
    }
    let applied = false;
    try {
      applied = await this.screen.apply(pending.uri, pending.edit);
    } catch (error) {
      this.deps.log.warn(`applying the next edit failed: ${String(error)}`);
    }
    if (applied) {
      this.screen.moveCursor(replacementEnd(pending.edit));
    }
    this.hide();
    if (applied) {
      await this.deps.notifyServer(ServerCommands.accept, [pending.edit.callId]);
    }
  }

  /** Escape: hide the edit and tell the server it was rejected. */
  async dismiss(): Promise<void> {
    const pending = this.take();
    if (!pending) {
      return;
    }
    this.hide();
    await this.deps.notifyServer(ServerCommands.reject, [pending.edit.callId]);
  }

  dispose(): void {
    this.reset();
  }

  private wanted(editor: EditorSnapshot): boolean {
    const settings = this.deps.settings();
    return (
      settings.nextEdit.enabled && SERVED_SCHEMES.has(editor.scheme) && settings.languages.includes(editor.languageId)
    );
  }

  /** Asks once the user pauses; each change restarts the wait and cancels the last ask. */
  private schedule(): void {
    this.stopAsking();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.ask();
    }, this.deps.delayMs ?? DEFAULT_DELAY_MS);
  }

  private stopAsking(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.inFlight?.tokens.cancel();
    this.inFlight = undefined;
  }

  private async ask(): Promise<void> {
    const editor = this.deps.activeEditor();
    if (!editor || !this.wanted(editor)) {
      return;
    }
    const { uri, version } = editor;
    const answer = await this.fetch(editor);
    // An answer for text that has changed since would point at the wrong lines.
    if (isNextEdit(answer) && sameUri(answer.uri, uri) && this.isCurrent(uri, version)) {
      this.show({ uri, edit: answer });
    }
  }

  /** The server's answer; undefined when the request failed or a newer change cancelled it. */
  private async fetch(editor: EditorSnapshot): Promise<unknown> {
    const tokens = new vscode.CancellationTokenSource();
    const asking: InFlight = { uri: editor.uri, tokens };
    this.inFlight = asking;
    try {
      const answer = await this.deps.request(
        { textDocument: { uri: editor.uri }, position: editor.cursor },
        tokens.token,
      );
      this.lastFailure = undefined;
      return tokens.token.isCancellationRequested ? undefined : answer;
    } catch (error) {
      if (!tokens.token.isCancellationRequested) {
        this.reportFailure(error);
      }
      return undefined;
    } finally {
      if (this.inFlight === asking) {
        this.inFlight = undefined;
      }
      tokens.dispose();
    }
  }

  /** A failure is logged once until a request succeeds (a stopped server fails them all). */
  private reportFailure(error: unknown): void {
    const why = error instanceof Error ? error.message : String(error);
    if (why !== this.lastFailure) {
      this.lastFailure = why;
      this.deps.log.warn(`next edit: ${why}`);
    }
  }

  private isCurrent(uri: string, version: number): boolean {
    const now = this.deps.activeEditor();
    return now?.uri === uri && now.version === version;
  }

  private show(pending: Pending): void {
    this.pending = pending;
    this.screen.show(previewLines(pending.edit));
    if (!this.shown) {
      this.shown = true;
      this.screen.setPending(true);
    }
  }

  private take(): Pending | undefined {
    const pending = this.pending;
    this.pending = undefined;
    return pending;
  }

  private hide(): void {
    if (this.shown) {
      this.shown = false;
      this.screen.clear();
      this.screen.setPending(false);
    }
  }

  private drop(): void {
    this.take();
    this.hide();
  }
}
