/** Machines named on the command line (`backup m1`), found by marker in the project. */
import type { Env } from "../context/machine.ts";
import { candidateHomes } from "../devpod_home.ts";
import type { KnownFolder } from "./bucket.ts";
import { resolveDestination } from "./destination.ts";
import { recordedFolders } from "./folder_record.ts";
import { backupFolder } from "./guard.ts";
import type { ProviderConfig } from "../config.ts";
import type { DokployApi } from "../dokploy/api.ts";
import { BackupApi, type Destination } from "../dokploy/backups.ts";
import { ConfigError, ProviderError } from "../errors.ts";
import type { Identity } from "../identity/identity.ts";
import { assertMine, pickMachine, type Relation } from "../identity/ownership.ts";
import {
  type MarkedCompose,
  type ProjectSnapshot,
  readProjectSnapshot,
} from "../machine/project.ts";
import type { BackedMachine } from "./run.ts";

export interface BackupContext {
  backups: BackupApi;
  destination: Destination;
  snapshot: ProjectSnapshot;
}

/** BACKUP_DESTINATION resolved, and the project read once. */
export async function backupContext(
  config: ProviderConfig,
  api: DokployApi,
): Promise<BackupContext> {
  if (!config.backup) {
    throw new ConfigError(
      "BACKUP_DESTINATION is empty; set it to a Dokploy S3 destination (devpod provider set-options <provider> -o BACKUP_DESTINATION=<name>)",
    );
  }
  const backups = new BackupApi(api.client);
  const [destination, snapshot] = await Promise.all([
    resolveDestination(backups, config.backup.destination),
    readProjectSnapshot(api, config.projectName),
  ]);
  return { backups, destination, snapshot };
}

/** A machine found in the project: what its backups need, and its SSH port (marker). */
export type LocatedMachine = BackedMachine & { sshPort: number };

/**
 * The machine with this DevPod id as the caller sees it (its own first: pickMachine), or
 * null when Dokploy has none; `owner` says whose it is.
 */
export function backedMachine(
  snapshot: ProjectSnapshot,
  machineId: string,
  me: Identity,
): (LocatedMachine & { relation: Relation; marked: MarkedCompose }) | null {
  const found = pickMachine(snapshot.machines, machineId, me);
  if (!found) return null;
  const { compose: c, marker } = found.machine;
  return {
    machineId,
    composeId: c.composeId,
    appName: c.appName,
    serverId: c.serverId ?? null,
    sshPort: marker.sshPort,
    relation: found.relation,
    marked: found.machine,
  };
}

/** The caller's own machine with this id; another owner's (or an unclaimed one) is refused. */
export function requireMachine(
  snapshot: ProjectSnapshot,
  machineId: string,
  me: Identity,
  verb: string,
): LocatedMachine {
  const m = backedMachine(snapshot, machineId, me);
  if (!m) {
    throw new ProviderError(
      `machine ${machineId} does not exist in Dokploy (devpod machine list shows yours)`,
    );
  }
  assertMine(m.marked, me, verb);
  return m;
}

/** Folders found without a search of the bucket: each live machine's, and those delete recorded. */
export async function knownFolders(
  snapshot: ProjectSnapshot,
  config: Pick<ProviderConfig, "serverUrl">,
  env: Env,
): Promise<KnownFolder[]> {
  const live = snapshot.machines.map(({ compose, marker }) => ({
    machineId: marker.machineId,
    folder: backupFolder(compose.appName, marker.machineId),
  }));
  // Recorded by delete in the home that held the machine: any of this computer's.
  const recorded = await Promise.all(
    candidateHomes(env).map((home) => recordedFolders(home, config.serverUrl)),
  );
  return [
    ...live,
    ...recorded.flat().map((r) => ({
      machineId: r.machineId,
      folder: r.folder,
      recordedHere: true,
    })),
  ];
}
