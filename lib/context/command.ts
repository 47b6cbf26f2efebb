/**
 * What every command receives: the environment DevPod gave us, a stderr logger, a
 * stdout writer (only `status` and `command` and the human verbs use it), and an
 * abort signal raised by Ctrl-C/SIGTERM. It loads nothing heavy: `command` starts
 * from here on every DevPod tunnel.
 */
import { createLogger, type Logger } from "../log.ts";
import { cliDebug } from "./cli_env.ts";
import type { Env } from "./machine.ts";

export interface CommandContext {
  env: Env;
  log: Logger;
  stdout: (text: string) => Promise<void>;
  signal: AbortSignal;
}

const encoder = new TextEncoder();

export function defaultContext(signal: AbortSignal): CommandContext {
  const env = Deno.env.toObject();
  return {
    env,
    log: createLogger({ debug: cliDebug(env) }),
    stdout: async (text) => {
      const bytes = encoder.encode(text);
      try {
        for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
      } catch (err) {
        // The reader went away (`… | head`): not an error of ours.
        if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
      }
    },
    signal,
  };
}
