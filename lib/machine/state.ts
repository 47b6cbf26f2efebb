/**
 * The machine's local state in MACHINE_FOLDER/state.json (0600, atomic writes).
 * It caches what Dokploy knows plus the pinned SSH identity; if it is lost the
 * machine is found again through its marker (see naming.ts).
 */
import { join } from "node:path";
import { StateError } from "../errors.ts";
import { readTextIfExists, writeFileAtomic } from "../fs.ts";
import type { Preview } from "../preview/forwarder.ts";

export interface MachineState {
  version: 1;
  machineId: string;
  composeId: string;
  appName: string;
  projectId: string;
  environmentId: string;
  serverId: string | null;
  sshHost: string;
  sshPort: number;
  sshUser: string;
  hostPublicKey: string;
  hostKeyFingerprint: string;
  createdAt: string;
  /**
   * Its owner, the Dokploy user whose key created (or claimed) it (lib/identity); absent
   * in state written before owners were recorded, until the next create or start claims it.
   */
  owner?: MachineOwnerRecord;
  /**
   * The CPU limit the server accepted when it has fewer CPUs than configured (Docker
   * refuses more); absent when the configured limit fits. See cpu_cap.ts.
   */
  cpuLimit?: number;
  /**
   * The appName of the server's shared image cache this machine mirrors Docker Hub
   * through (lib/cache); absent when it pulls from Docker Hub directly.
   */
  imageCache?: string;
  /**
   * Its engine pushes to, and DevPod finds prebuilds in, that cache's prebuild registry
   * (lib/prebuild) as localhost:5151; absent: no prebuild registry.
   */
  prebuilds?: boolean;
  /**
   * The Dokploy volume backup that backs this machine up (lib/backup), as last
   * registered: a start with the same options makes no call about it.
   */
  backup?: BackupRecord;
  /**
   * The preview URLs the machine's forwarder serves (lib/preview), as read from Dokploy's
   * copy of the compose file when the machine is started or adopted, so that a re-render
   * keeps them. Never written to state.json: `preview` may run on another computer.
   */
  previews?: Preview[];
}

export interface MachineOwnerRecord {
  userId: string;
  email: string;
  /** The DevPod home it is kept in (lib/devpod_home.ts homeOrigin): whose cleanup sees it. */
  origin?: string;
}

export interface BackupRecord {
  volumeBackupId: string;
  /** BACKUP_DESTINATION as given (a name or an id) … */
  destination: string;
  /** … and the destination it named then. */
  destinationId: string;
  /** The effective cron expression (BACKUP_SCHEDULE with `nightly` resolved). */
  schedule: string;
  keep: number;
}

const STRING_FIELDS = [
  "machineId",
  "composeId",
  "appName",
  "projectId",
  "environmentId",
  "sshHost",
  "sshUser",
  "hostPublicKey",
  "hostKeyFingerprint",
  "createdAt",
] as const;

/** Hand-written check: `command` reads this on every tunnel and must start fast. */
function isMachineState(v: unknown): v is MachineState {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return o.version === 1 && STRING_FIELDS.every((k) => typeof o[k] === "string") &&
    (o.serverId === null || typeof o.serverId === "string") &&
    Number.isInteger(o.sshPort) && (o.sshPort as number) > 0 && (o.sshPort as number) < 65536 &&
    (o.cpuLimit === undefined || (typeof o.cpuLimit === "number" && o.cpuLimit > 0)) &&
    (o.imageCache === undefined ||
      (typeof o.imageCache === "string" && /^[a-zA-Z0-9._-]+$/.test(o.imageCache))) &&
    (o.prebuilds === undefined || typeof o.prebuilds === "boolean") &&
    (o.backup === undefined || isBackupRecord(o.backup));
}

function isBackupRecord(v: unknown): v is BackupRecord {
  const b = v as Record<string, unknown>;
  return typeof v === "object" && v !== null && typeof b.volumeBackupId === "string" &&
    typeof b.destination === "string" && typeof b.destinationId === "string" &&
    typeof b.schedule === "string" &&
    Number.isInteger(b.keep);
}

export const STATE_FILE = "state.json";

export async function readState(folder: string): Promise<MachineState | null> {
  const text = await readTextIfExists(join(folder, STATE_FILE));
  if (text === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StateError(
      `${
        join(folder, STATE_FILE)
      } is not valid JSON; delete the file and run the command again to re-adopt the machine`,
    );
  }
  if (!isMachineState(raw)) {
    throw new StateError(
      `${
        join(folder, STATE_FILE)
      } has an unknown format; delete the file and run the command again to re-adopt the machine`,
    );
  }
  return raw;
}

export async function writeState(folder: string, state: MachineState): Promise<void> {
  const { previews: _fromDokploy, ...kept } = state;
  await writeFileAtomic(join(folder, STATE_FILE), JSON.stringify(kept, null, 2) + "\n", 0o600);
}
