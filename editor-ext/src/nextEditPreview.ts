// How a next edit reads in the editor before it is applied: each line it touches, with
// the text that replaces it beside it, and where the cursor lands once it is applied.
// Pure, so the rendering is tested without VS Code.
import type { Position, Range } from 'vscode-languageclient/node';
import { NextEdit } from './protocol';

export interface PreviewLine {
  line: number;
  /** Shown after the line's own text. */
  text: string;
  /** The line itself is replaced or deleted (highlighted); false beside a pure insertion. */
  changed: boolean;
}

const REPLACED_BY = '  → ';
const INSERTED = '  + ';
const NEWLINE = ' ⏎ ';
const DELETED = '(delete)';
/** An empty new line would otherwise read as nothing at all. */
const EMPTY_LINE = '(empty line)';

/** The new text's lines; the newline that ends the last one opens no line of its own. */
function newLines(text: string): string[] {
  if (text === '') {
    return [];
  }
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') {
    lines.pop();
  }
  return lines;
}

/** Lines the range covers: its end at character 0 belongs to the line after the last. */
function replacedLineCount(range: Range): number {
  return range.end.line - range.start.line + (range.end.character > 0 ? 1 : 0);
}

function shown(line: string): string {
  return line === '' ? EMPTY_LINE : line;
}

export function previewLines(edit: NextEdit): PreviewLine[] {
  const start = edit.range.start.line;
  const added = newLines(edit.newText);
  const replaced = replacedLineCount(edit.range);
  if (replaced === 0) {
    // Nothing is replaced: the new lines go above `start`, so show them beside the line
    // above it (the first line when they open the document).
    return [{ line: Math.max(start - 1, 0), text: INSERTED + added.map(shown).join(NEWLINE), changed: false }];
  }
  return Array.from({ length: replaced }, (_, k) => {
    const isLast = k === replaced - 1;
    // The last replaced line also carries the new lines the old ones have no room for.
    const replacement = isLast ? added.slice(k) : added.slice(k, k + 1);
    return {
      line: start + k,
      text: REPLACED_BY + (replacement.length > 0 ? replacement.map(shown).join(NEWLINE) : DELETED),
      changed: true,
    };
  });
}

/** The end of the new text in the edited document: the end of its last line (not the start
 * of the line after it), or the range's start when the edit only deletes. */
export function replacementEnd(edit: NextEdit): Position {
  const { start } = edit.range;
  const lines = newLines(edit.newText);
  if (lines.length === 0) {
    return { line: start.line, character: start.character };
  }
  const last = lines[lines.length - 1];
  return lines.length === 1
    ? { line: start.line, character: start.character + last.length }
    : { line: start.line + lines.length - 1, character: last.length };
}
