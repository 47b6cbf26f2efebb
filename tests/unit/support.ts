/** Shared by unit tests: a Logger that keeps every line, fixtures, a machine spec to render. */
import type { Logger } from "../../lib/log.ts";
import type { MachineInfo } from "../../lib/machine/inventory.ts";

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

/** A MachineInfo as `list` builds it, stopped and bare unless `extra` says otherwise. */
export function machineInfo(machineId: string, extra: Partial<MachineInfo> = {}): MachineInfo {
  return {
    machineId,
    composeId: `c-${machineId}`,
    appName: `devpod-${machineId}`,
    state: "Stopped",
    composeStatus: "done",
    containers: 0,
    sshPort: 32200,
    serverId: null,
    createdAt: null,
    owner: "unknown",
    ownerId: null,
    origin: null,
    cpus: null,
    memory: null,
    imageCache: null,
    prebuilds: false,
    backups: false,
    previews: [],
    ...extra,
  };
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
