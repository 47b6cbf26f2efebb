/** Shared by unit tests: a Logger that keeps every line, and a machine spec to render. */
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

/** A dind machine's spec as the compose tests render it (no cache, backups or previews). */
export const MACHINE_SPEC = {
  machineId: "ws-1",
  image: "debian:bookworm-slim",
  dockerMode: "dind" as const,
  cpus: 2,
  memoryMiB: 4096,
  sshPort: 32200,
  authorizedKey: "ssh-ed25519 AAAA test",
  inactivityTimeoutSec: 0,
  dokployNetwork: false,
  disableAgentTelemetry: false,
  imageCache: null,
  providerVersion: "v9",
};
