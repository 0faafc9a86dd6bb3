// Client-side hooks into the language client: ask for a refactor instruction, and keep
// inline completions quiet while the engine is down.
import type { Middleware } from 'vscode-languageclient/node';
import { EngineState, ServerCommands } from './protocol';

export interface MiddlewareDeps {
  /** Asks the user what the refactor should do; undefined when they cancel. */
  askInstruction(): PromiseLike<string | undefined>;
  engineState(): EngineState | undefined;
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
    provideInlineCompletionItems: (document, position, context, token, next) => {
      // The server would answer nothing anyway; skip the round trip.
      if (deps.engineState() === 'down') {
        return null;
      }
      return next(document, position, context, token);
    },
  };
}
