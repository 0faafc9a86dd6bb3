import { describe, expect, it } from 'vitest';
import { acceptedCallId, dismiss, ShownSuggestions } from '../src/dismiss';

const item = (callId: string) => ({ insertText: 'x', command: { command: 'covey.accept', arguments: [callId] } });

function editor(version: number) {
  const d = {
    events: [] as string[],
    hide: async () => d.events.push('hide'),
    activeDocument: () => ({ uri: 'file:///a.py', version }),
    reject: async (callId: string) => d.events.push(`reject ${callId}`),
  };
  return d;
}

describe('dismissing a suggestion', () => {
  it('finds the call in a list or an array of items, and nothing elsewhere', () => {
    expect(acceptedCallId({ items: [item('c1')] })).toBe('c1');
    expect(acceptedCallId([item('c2'), item('c3')])).toBe('c2');
    for (const answer of [null, undefined, [], { items: [] }, [{ insertText: 'x' }],
      [{ command: { command: 'other', arguments: ['c4'] } }]]) {
      expect(acceptedCallId(answer)).toBeUndefined();
    }
  });

  it('hides the ghost text and rejects the suggestion still showing', async () => {
    const shown = new ShownSuggestions();
    shown.record('file:///a.py', 3, [item('c1')]);
    const e = editor(3);
    await dismiss(e, shown);
    expect(e.events).toEqual(['hide', 'reject c1']);
    await dismiss(e, shown);  // taken once: a second Escape rejects nothing
    expect(e.events).toEqual(['hide', 'reject c1', 'hide']);
  });

  it('rejects nothing once the document changed (an accept or typing) or after an empty answer', async () => {
    const shown = new ShownSuggestions();
    shown.record('file:///a.py', 3, [item('c1')]);
    const edited = editor(4);
    await dismiss(edited, shown);
    expect(edited.events).toEqual(['hide']);
    shown.record('file:///a.py', 5, [item('c2')]);
    shown.record('file:///a.py', 5, []);
    const e = editor(5);
    await dismiss(e, shown);
    expect(e.events).toEqual(['hide']);
  });
});
