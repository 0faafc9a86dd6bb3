// The VS Code side of next edits: draws one in the active editor with the stable
// decorations API and applies it on Tab.
import * as vscode from 'vscode';
import type { Position, Range } from 'vscode-languageclient/node';
import { EditorSnapshot, NEXT_EDIT_PENDING, NextEditScreen } from './nextEdit';
import { PreviewLine } from './nextEditPreview';
import { NextEdit } from './protocol';

export function editorSnapshot(editor: vscode.TextEditor | undefined): EditorSnapshot | undefined {
  if (!editor) {
    return undefined;
  }
  const { document, selection } = editor;
  return {
    uri: document.uri.toString(),
    scheme: document.uri.scheme,
    languageId: document.languageId,
    version: document.version,
    cursor: { line: selection.active.line, character: selection.active.character },
  };
}

function toRange(range: Range): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

export class NextEditView implements NextEditScreen, vscode.Disposable {
  // The lines the edit replaces, marked as a diff marks removed lines.
  private readonly changedLines = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.removedLineBackground'),
  });
  // Their replacement, after each line's text, in the colour of ghost text.
  private readonly replacements = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editorGhostText.foreground'), fontStyle: 'italic' },
  });

  show(lines: PreviewLine[]): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      return;
    }
    const { document } = editor;
    // A line past the end (an insertion at the very end) is shown beside the last one.
    const lineAt = (line: number) => document.lineAt(Math.min(line, document.lineCount - 1));
    editor.setDecorations(
      this.changedLines,
      lines.filter((l) => l.changed).map((l) => lineAt(l.line).range),
    );
    editor.setDecorations(
      this.replacements,
      lines.map((l) => {
        const end = lineAt(l.line).range.end;
        return { range: new vscode.Range(end, end), renderOptions: { after: { contentText: l.text } } };
      }),
    );
  }

  clear(): void {
    // Every visible editor: the one it was drawn in may no longer be the active one.
    for (const editor of vscode.window.visibleTextEditors) {
      editor.setDecorations(this.changedLines, []);
      editor.setDecorations(this.replacements, []);
    }
  }

  setPending(pending: boolean): void {
    void vscode.commands.executeCommand('setContext', NEXT_EDIT_PENDING, pending);
  }

  /** Applies `range` → `newText`, the same change as the answer's WorkspaceEdit, without
   * converting that from LSP (the language client's converter is not exposed here). */
  async apply(uri: string, edit: NextEdit): Promise<boolean> {
    const document = vscode.window.activeTextEditor?.document;
    if (document?.uri.toString() !== uri) {
      return false;
    }
    const change = new vscode.WorkspaceEdit();
    change.replace(document.uri, toRange(edit.range), edit.newText);
    return vscode.workspace.applyEdit(change);
  }

  moveCursor(position: Position): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      return;
    }
    const at = editor.document.validatePosition(new vscode.Position(position.line, position.character));
    editor.selection = new vscode.Selection(at, at);
    editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  dispose(): void {
    this.changedLines.dispose();
    this.replacements.dispose();
  }
}
