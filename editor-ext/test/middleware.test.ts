import { describe, expect, it } from 'vitest';
import { ShownSuggestions } from '../src/dismiss';
import { createMiddleware, executeCommand, MiddlewareDeps } from '../src/middleware';
import { EngineState } from '../src/protocol';

function deps(answer: string | undefined, state?: EngineState): MiddlewareDeps & { asked: number } {
  const d = {
    asked: 0,
    askInstruction: async () => {
      d.asked += 1;
      return answer;
    },
    engineState: () => state,
  };
  return d;
}

const range = { start: { line: 1, character: 0 }, end: { line: 3, character: 0 } };

describe('executeCommand middleware', () => {
  it('asks for the instruction of "Refactor selection…" and re-sends it', async () => {
    const d = deps('  use a comprehension ');
    const sent: unknown[][] = [];
    await executeCommand(d, 'covey.refactor', ['file:///a.py', range, null], (c, a) => sent.push([c, ...a]));
    expect(d.asked).toBe(1);
    expect(sent).toEqual([['covey.refactor', 'file:///a.py', range, 'use a comprehension']]);
  });

  it('sends nothing when the user cancels or types nothing', async () => {
    for (const answer of [undefined, '   ']) {
      const sent: unknown[] = [];
      await executeCommand(deps(answer), 'covey.refactor', ['file:///a.py', range, null], (c) => sent.push(c));
      expect(sent).toEqual([]);
    }
  });

  it('passes other commands and refactors with an instruction straight through', async () => {
    const d = deps('never asked');
    const sent: unknown[][] = [];
    const next = (c: string, a: unknown[]) => sent.push([c, ...a]);
    await executeCommand(d, 'covey.refactor', ['file:///a.py', range, 'rename x'], next);
    await executeCommand(d, 'covey.accept', ['call-1'], next);
    expect(d.asked).toBe(0);
    expect(sent).toEqual([
      ['covey.refactor', 'file:///a.py', range, 'rename x'],
      ['covey.accept', 'call-1'],
    ]);
  });
});

describe('inline completion middleware', () => {
  const call = async (state: EngineState | undefined, shown?: ShownSuggestions) => {
    let asked = 0;
    const middleware = createMiddleware({ ...deps(undefined, state), shown });
    const answer = [{ insertText: 'x', command: { command: 'covey.accept', arguments: ['call-7'] } }];
    const next = () => {
      asked += 1;
      return answer;
    };
    const document = { uri: { toString: () => 'file:///a.py' }, version: 4 };
    // The position/context/token are passed through untouched.
    const result = await middleware.provideInlineCompletionItems!(
      document as never, {} as never, {} as never, {} as never, next as never,
    );
    return { result, asked };
  };

  it('stays quiet while the engine is down', async () => {
    expect(await call('down')).toEqual({ result: null, asked: 0 });
  });

  it('asks the server otherwise', async () => {
    expect((await call('up')).asked).toBe(1);
    expect((await call(undefined)).asked).toBe(1);
  });

  it('notes the call behind what it shows, at the document version', async () => {
    const shown = new ShownSuggestions();
    await call('up', shown);
    expect(shown.take('file:///a.py', 4)).toBe('call-7');
  });
});
