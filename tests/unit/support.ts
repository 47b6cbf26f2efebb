/** Shared by unit tests: a Logger that keeps every line, prefixed with its level. */
import type { Logger } from "../../lib/log.ts";

export function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debugEnabled: false,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    debug: () => {},
  };
  return { log, lines };
}
