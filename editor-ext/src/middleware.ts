// Client-side hooks into the language client: ask for a refactor instruction, keep
// inline completions quiet while the engine is down, and note what each one showed.
import type { Middleware } from 'vscode-languageclient/node';
import { ShownSuggestions } from './dismiss';
import { EngineState, ServerCommands } from './protocol';

export interface MiddlewareDeps {
  /** Asks the user what the refactor should do; undefined when they cancel. */
  askInstruction(): PromiseLike<string | undefined>;
  engineState(): EngineState | undefined;
  /** Where each document's last suggestion is kept, for a later dismissal. */
  shown?: ShownSuggestions;
}

type Next = (command: string, args: unknown[]) => unknown;

/** `covey.refactor uri range null` means "ask the user, then re-send with their text". */
export async function executeCommand(
  deps: MiddlewareDeps,
  command: string,
  args: unknown[],
  next: Next,
): Promise<unknown> {
  if (command === ServerCommands.refactor && args.length >= 2 && args[2] == null) {
    const instruction = (await deps.askInstruction())?.trim();
    if (!instruction) {
      return undefined;
    }
    return next(command, [args[0], args[1], instruction]);
  }
  return next(command, args);
}

export function createMiddleware(deps: MiddlewareDeps): Middleware {
  return {
    executeCommand: (command, args, next) => executeCommand(deps, command, args, next),
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      // The server would answer nothing anyway; skip the round trip.
      if (deps.engineState() === 'down') {
        return null;
      }
      const answer = await next(document, position, context, token);
      deps.shown?.record(document.uri.toString(), document.version, answer);
      return answer;
    },
  };
}
