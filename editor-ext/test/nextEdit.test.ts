import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CancellationToken } from 'vscode';
import {
  ACCEPT_NEXT_EDIT,
  DISMISS_NEXT_EDIT,
  EditorSnapshot,
  NEXT_EDIT_PENDING,
  NextEdits,
  NextEditScreen,
} from '../src/nextEdit';
import { PreviewLine, previewLines, replacementEnd } from '../src/nextEditPreview';
import { Methods, NextEdit, NextEditParams } from '../src/protocol';

const URI = 'file:///work/a.py';

function nextEdit(
  startLine: number,
  endLine: number,
  newText: string,
  callId = 'c1',
  endCharacter = 0,
): NextEdit {
  const range = { start: { line: startLine, character: 0 }, end: { line: endLine, character: endCharacter } };
  return { callId, uri: URI, range, newText, edit: { changes: { [URI]: [{ range, newText }] } } };
}

interface Asked {
  params: NextEditParams;
  token: CancellationToken;
  answer(value: unknown): void;
}

function setup(settings = { languages: ['python'], nextEdit: { enabled: true } }) {
  const events: string[] = [];
  const asked: Asked[] = [];
  const editor: EditorSnapshot = {
    uri: URI,
    scheme: 'file',
    languageId: 'python',
    version: 1,
    cursor: { line: 2, character: 7 },
  };
  const state = { editor: editor as EditorSnapshot | undefined, lines: undefined as PreviewLine[] | undefined };
  const screen: NextEditScreen & { onApply?: () => void } = {
    show: (lines) => {
      state.lines = lines;
    },
    clear: () => {
      state.lines = undefined;
      events.push('clear');
    },
    setPending: (pending) => events.push(`pending ${pending}`),
    apply: async (uri, edit) => {
      events.push(`apply ${uri} ${JSON.stringify(edit.newText)}`);
      screen.onApply?.();
      return true;
    },
    moveCursor: (p) => events.push(`cursor ${p.line}:${p.character}`),
  };
  const edits = new NextEdits(
    {
      activeEditor: () => state.editor,
      settings: () => settings,
      request: (params, token) =>
        new Promise((resolve) => asked.push({ params, token, answer: resolve })),
      notifyServer: async (command, args) => events.push(`${command} ${args.join(' ')}`),
      log: { warn: (m) => events.push(`warn ${m}`) },
    },
    screen,
  );
  /** A keystroke in the active document: a new version, then VS Code's change event. */
  const type = () => {
    editor.version += 1;
    edits.onDocumentChanged(URI);
  };
  /** A keystroke, the pause, and the server's answer to the request it brings. */
  const suggest = async (answer: unknown) => {
    type();
    await vi.advanceTimersByTimeAsync(150);
    asked[asked.length - 1].answer(answer);
    await vi.advanceTimersByTimeAsync(0);
  };
  return { edits, events, asked, editor, state, screen, type, suggest };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('asking for a next edit', () => {
  it('asks for the cursor once the typing pauses, cancelling the request a newer change outdates', async () => {
    const { asked, type } = setup();
    type();
    await vi.advanceTimersByTimeAsync(100);
    type(); // restarts the wait
    await vi.advanceTimersByTimeAsync(149);
    expect(asked).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked.map((a) => a.params)).toEqual([
      { textDocument: { uri: URI }, position: { line: 2, character: 7 } },
    ]);
    expect(asked[0].token.isCancellationRequested).toBe(false);
    type();
    expect(asked[0].token.isCancellationRequested).toBe(true);
    await vi.advanceTimersByTimeAsync(150);
    expect(asked).toHaveLength(2);
  });

  it('asks nothing when turned off, for other languages or schemes, or for a document in the background', async () => {
    const off = setup({ languages: ['python'], nextEdit: { enabled: false } });
    off.type();
    const otherLanguage = setup({ languages: ['typescript'], nextEdit: { enabled: true } });
    otherLanguage.type();
    const gitDiff = setup();
    gitDiff.editor.scheme = 'git';
    gitDiff.type();
    const background = setup();
    background.edits.onDocumentChanged('file:///work/other.py');
    await vi.advanceTimersByTimeAsync(1000);
    for (const s of [off, otherLanguage, gitDiff, background]) {
      expect(s.asked).toHaveLength(0);
    }
  });

  it('shows an answer for the current text, with the context key set once', async () => {
    const { events, state, suggest } = setup();
    await suggest(nextEdit(3, 4, 'y = 2\n'));
    expect(state.lines).toEqual([{ line: 3, text: '  → y = 2', changed: true }]);
    expect(events).toEqual(['pending true']);
  });

  it('ignores an answer for a document version that is no longer current', async () => {
    const { asked, editor, state, type } = setup();
    type();
    await vi.advanceTimersByTimeAsync(150);
    type(); // the user typed on while the server thought
    asked[0].answer(nextEdit(3, 4, 'old\n', 'stale'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.lines).toBeUndefined();

    // The version moved on, though no change event came before the answer.
    await vi.advanceTimersByTimeAsync(150);
    editor.version += 1;
    asked[1].answer(nextEdit(3, 4, 'older\n', 'stale too'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.lines).toBeUndefined();
  });

  it('ignores null, malformed answers and edits for another document', async () => {
    const { state, suggest } = setup();
    await suggest(null);
    await suggest({ callId: 'c1', newText: 'x' });
    await suggest({ ...nextEdit(1, 2, 'x\n'), uri: 'file:///work/other.py' });
    expect(state.lines).toBeUndefined();
    await suggest({ ...nextEdit(1, 2, 'x\n'), uri: 'file:///work/%61.py' }); // the same, escaped
    expect(state.lines).toHaveLength(1);
  });

  it('logs a failed request once until one succeeds', async () => {
    const s = setup();
    const fail = async () => {
      s.type();
      await vi.advanceTimersByTimeAsync(150);
      s.asked[s.asked.length - 1].answer(Promise.reject(new Error('the Covey server is not running')));
      await vi.advanceTimersByTimeAsync(0);
    };
    await fail();
    await fail();
    expect(s.events).toEqual(['warn next edit: the Covey server is not running']);
    await s.suggest(null);
    await fail();
    expect(s.events).toHaveLength(2);
  });
});

describe('previewLines', () => {
  it('shows a one-line replacement beside the line', () => {
    expect(previewLines(nextEdit(4, 5, '    return total\n'))).toEqual([
      { line: 4, text: '  →     return total', changed: true },
    ]);
  });

  it('pairs old and new lines, the extra new ones after the last old line', () => {
    expect(previewLines(nextEdit(2, 4, 'a = 1\nb = 2\nc = 3\n\nd = 4\n'))).toEqual([
      { line: 2, text: '  → a = 1', changed: true },
      { line: 3, text: '  → b = 2 ⏎ c = 3 ⏎ (empty line) ⏎ d = 4', changed: true },
    ]);
  });

  it('marks the old lines the new text has no room for as deleted', () => {
    expect(previewLines(nextEdit(2, 5, 'a = 1\r\n'))).toEqual([
      { line: 2, text: '  → a = 1', changed: true },
      { line: 3, text: '  → (delete)', changed: true },
      { line: 4, text: '  → (delete)', changed: true },
    ]);
  });

  it('shows a deletion', () => {
    expect(previewLines(nextEdit(7, 9, ''))).toEqual([
      { line: 7, text: '  → (delete)', changed: true },
      { line: 8, text: '  → (delete)', changed: true },
    ]);
  });

  it('counts a last line that ends the document without a newline', () => {
    expect(previewLines(nextEdit(3, 4, 'x = 1\ny = 2', 'c1', 5))).toEqual([
      { line: 3, text: '  → x = 1', changed: true },
      { line: 4, text: '  → y = 2', changed: true },
    ]);
  });

  it('shows an insertion beside the line above it, not highlighted', () => {
    expect(previewLines(nextEdit(5, 5, 'log(x)\nlog(y)\n'))).toEqual([
      { line: 4, text: '  + log(x) ⏎ log(y)', changed: false },
    ]);
    expect(previewLines(nextEdit(0, 0, 'import os\n'))[0].line).toBe(0);
  });
});

describe('replacementEnd', () => {
  it('is the end of the last new line, or the start when the edit deletes', () => {
    expect(replacementEnd(nextEdit(4, 5, '    return total\n'))).toEqual({ line: 4, character: 16 });
    expect(replacementEnd(nextEdit(2, 4, 'a = 1\nbb = 22\n'))).toEqual({ line: 3, character: 7 });
    expect(replacementEnd(nextEdit(3, 4, 'x = 1\ny = 2', 'c1', 5))).toEqual({ line: 4, character: 5 });
    expect(replacementEnd(nextEdit(7, 9, ''))).toEqual({ line: 7, character: 0 });
  });
});

describe('accepting and dismissing', () => {
  it('Tab applies the edit, puts the cursor after it, clears it, then sends covey.accept', async () => {
    const { edits, events, state, suggest } = setup();
    await suggest(nextEdit(2, 4, 'a = 1\nbb = 22\n', 'call-7'));
    events.length = 0;
    await edits.accept();
    expect(events).toEqual([
      `apply ${URI} "a = 1\\nbb = 22\\n"`,
      'cursor 3:7',
      'clear',
      'pending false',
      'covey.accept call-7',
    ]);
    expect(state.lines).toBeUndefined();
    await edits.accept(); // taken once
    expect(events).toHaveLength(5);
  });

  it("does not count the accept's own change as typing elsewhere", async () => {
    const { edits, events, screen, suggest, type, asked } = setup();
    await suggest(nextEdit(2, 3, 'a = 1\n', 'call-8'));
    events.length = 0;
    screen.onApply = type; // VS Code reports the applied change before applyEdit resolves
    await edits.accept();
    expect(events).toEqual([`apply ${URI} "a = 1\\n"`, 'cursor 2:5', 'clear', 'pending false', 'covey.accept call-8']);
    // The accepted edit is an edit too: the next one is asked for after it.
    await vi.advanceTimersByTimeAsync(150);
    expect(asked).toHaveLength(2);
  });

  it('sends no accept when VS Code refuses the edit', async () => {
    const { edits, events, screen, suggest } = setup();
    await suggest(nextEdit(2, 3, 'a = 1\n'));
    events.length = 0;
    screen.apply = async () => false;
    await edits.accept();
    expect(events).toEqual(['clear', 'pending false']);
  });

  it('Escape clears the edit and sends covey.reject', async () => {
    const { edits, events, state, suggest } = setup();
    await suggest(nextEdit(2, 3, 'a = 1\n', 'call-9'));
    events.length = 0;
    await edits.dismiss();
    expect(events).toEqual(['clear', 'pending false', 'covey.reject call-9']);
    expect(state.lines).toBeUndefined();
  });

  it('typing elsewhere drops the edit without a reject', async () => {
    const { edits, events, state, suggest, type } = setup();
    await suggest(nextEdit(2, 3, 'a = 1\n'));
    events.length = 0;
    type();
    expect(events).toEqual(['clear', 'pending false']);
    expect(state.lines).toBeUndefined();
    await edits.accept();
    await edits.dismiss();
    expect(events).toEqual(['clear', 'pending false']); // nothing left to apply or reject
  });

  it('switching editors or closing the document drops the edit without a reject', async () => {
    const switched = setup();
    await switched.suggest(nextEdit(2, 3, 'a = 1\n'));
    switched.edits.onActiveEditorChanged();
    const closed = setup();
    await closed.suggest(nextEdit(2, 3, 'a = 1\n'));
    closed.edits.onDocumentClosed('file:///work/other.py');
    expect(closed.state.lines).toBeDefined();
    closed.edits.onDocumentClosed(URI);
    for (const s of [switched, closed]) {
      expect(s.events).toEqual(['pending true', 'clear', 'pending false']);
      expect(s.state.lines).toBeUndefined();
    }
  });

  it('switching editors cancels the request in flight', async () => {
    const { asked, edits, state, type } = setup();
    type();
    await vi.advanceTimersByTimeAsync(150);
    edits.onActiveEditorChanged();
    expect(asked[0].token.isCancellationRequested).toBe(true);
    type();
    edits.onActiveEditorChanged(); // before the pause is over: nothing is asked
    await vi.advanceTimersByTimeAsync(1000);
    expect(asked).toHaveLength(1);
    expect(state.lines).toBeUndefined();
  });
});

describe('package.json', () => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const binding = (command: string) =>
    manifest.contributes.keybindings.find((k: { command: string }) => k.command === command);

  it('binds Tab and Escape while a next edit shows, after ghost text, the suggest widget and snippets', () => {
    expect(binding(ACCEPT_NEXT_EDIT)).toEqual({
      command: ACCEPT_NEXT_EDIT,
      key: 'tab',
      when: `editorTextFocus && ${NEXT_EDIT_PENDING} && !inlineSuggestionVisible && !suggestWidgetVisible && !inSnippetMode`,
    });
    expect(binding(DISMISS_NEXT_EDIT)).toEqual({
      command: DISMISS_NEXT_EDIT,
      key: 'escape',
      when: `editorTextFocus && ${NEXT_EDIT_PENDING} && !inlineSuggestionVisible && !suggestWidgetVisible`,
    });
    const commands = manifest.contributes.commands.map((c: { command: string }) => c.command);
    expect(commands).toEqual(expect.arrayContaining([ACCEPT_NEXT_EDIT, DISMISS_NEXT_EDIT]));
  });

  it('names the request as the server does', () => {
    expect(Methods.nextEdit).toBe('covey/nextEdit');
  });
});
