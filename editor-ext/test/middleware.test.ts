import { describe, expect, it } from 'vitest';
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
  const call = (state: EngineState | undefined) => {
    let asked = 0;
    const middleware = createMiddleware(deps(undefined, state));
    const next = () => {
      asked += 1;
      return [];
    };
    // The document/position/context/token are passed through untouched.
    const result = middleware.provideInlineCompletionItems!(
      {} as never, {} as never, {} as never, {} as never, next as never,
    );
    return { result, asked };
  };

  it('stays quiet while the engine is down', () => {
    expect(call('down')).toEqual({ result: null, asked: 0 });
  });

  it('asks the server otherwise', () => {
    expect(call('up').asked).toBe(1);
    expect(call(undefined).asked).toBe(1);
  });
});
