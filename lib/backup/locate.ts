/** Machines named on the command line (`backup m1`), found by marker in the project. */
import type { Env } from "../context/machine.ts";
import { devpodHome } from "../devpod_home.ts";
import type { KnownFolder } from "./bucket.ts";
import { resolveDestination } from "./destination.ts";
import { recordedFolders } from "./folder_record.ts";
import { backupFolder } from "./guard.ts";
import type { ProviderConfig } from "../config.ts";
import type { DokployApi } from "../dokploy/api.ts";
import { BackupApi, type Destination } from "../dokploy/backups.ts";
import { ConfigError, ProviderError } from "../errors.ts";
import { type ProjectSnapshot, readProjectSnapshot } from "../machine/project.ts";
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

/** The machine with this DevPod id, or null when Dokploy has none. */
export function backedMachine(
  snapshot: ProjectSnapshot,
  machineId: string,
): LocatedMachine | null {
  const found = snapshot.machines.find((m) => m.marker.machineId === machineId);
  if (!found) return null;
  const { compose: c, marker } = found;
  return {
    machineId,
    composeId: c.composeId,
    appName: c.appName,
    serverId: c.serverId ?? null,
    sshPort: marker.sshPort,
  };
}

export function requireMachine(snapshot: ProjectSnapshot, machineId: string): LocatedMachine {
  const m = backedMachine(snapshot, machineId);
  if (!m) {
    throw new ProviderError(
      `machine ${machineId} does not exist in Dokploy (devpod machine list shows yours)`,
    );
  }
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
  const recorded = await recordedFolders(devpodHome(env), config.serverUrl);
  return [...live, ...recorded.map((r) => ({ machineId: r.machineId, folder: r.folder }))];
}
