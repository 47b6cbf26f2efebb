/** `delete` (design §5): the service (and its volumes unless KEEP_VOLUMES), then local files. Idempotent. */
import { join } from "node:path";
import { rememberFolder } from "../backup/folder_record.ts";
import { homeVolumeName } from "../backup/guard.ts";
import { removeBackupSchedule } from "../backup/register.ts";
import { candidateHomes } from "../devpod_home.ts";
import { BackupApi } from "../dokploy/backups.ts";
import { removeIfExists } from "../fs.ts";
import { requireReachable } from "../servers/unreachable.ts";
import { CLIENT_KEY, HOST_KEY, KNOWN_HOSTS } from "../ssh/keys.ts";
import type { MachineDeps } from "./deps.ts";
import { findByMarker } from "./locate.ts";
import { readState, STATE_FILE } from "./state.ts";

const LOCAL_FILES = [
  STATE_FILE,
  KNOWN_HOSTS,
  CLIENT_KEY,
  `${CLIENT_KEY}.pub`,
  HOST_KEY,
  `${HOST_KEY}.pub`,
];

export async function deleteMachine(d: MachineDeps): Promise<void> {
  const folder = d.machine.machineFolder;
  // state.json names the service: delete it straight away, a 404 says it was gone.
  const state = await readState(folder);
  const listed = state ? null : await findByMarker(d);
  const composeId = state?.composeId ?? listed?.composeId;
  const keep = d.config.keepVolumes;
  if (!composeId) {
    d.log.info(`machine ${d.machine.machineId} is already gone from Dokploy`);
  } else {
    // Dokploy deletes the service even when it cannot reach the server, leaving the
    // container running there for nobody to find: refuse instead.
    await requireReachable(
      d.api,
      state?.serverId ?? listed?.serverId ?? null,
      "the machine was not deleted (its container would be left running there)",
    );
    // First the schedule: a job of a deleted service would fail every night.
    if (state?.backup || d.config.backup) {
      await removeBackupSchedule(d, composeId, state?.backup).catch((err) =>
        d.log.warn(
          `could not remove the backup schedule (${
            (err as Error).message
          }); Dokploy drops it with the service, but its job may run until Dokploy restarts`,
        )
      );
    }
    const appName = state?.appName ?? listed?.appName;
    if (appName && (state?.backup || d.config.backup)) await recordBackupFolder(d, appName);
    d.log.info(
      `deleting machine ${d.machine.machineId}${keep ? " (KEEP_VOLUMES: volumes are kept)" : ""}`,
    );
    const deleted = await d.api.deleteCompose(composeId, !keep);
    if (!deleted) d.log.info("it was already gone from Dokploy");
    if (!keep && appName && (state?.backup || d.config.backup)) {
      await removeRestoredHome(d, appName, state?.serverId ?? listed?.serverId ?? null);
    }
  }
  for (const f of LOCAL_FILES) await removeIfExists(join(folder, f));
}

/**
 * A home put back by `restore` is a volume Dokploy made without compose's labels, which
 * compose's `down --volumes` leaves behind: remove it by name. Usually it is gone already.
 */
async function removeRestoredHome(d: MachineDeps, appName: string, serverId: string | null) {
  await new BackupApi(d.api.client).removeVolume(homeVolumeName(appName), serverId).then(
    () => d.log.debug(`removed the restored home volume ${homeVolumeName(appName)}`),
    () => {}, // none left: compose removed it
  );
}

/**
 * Its backups stay; their folder's name goes with the service: kept for restore in the
 * DevPod home that holds the machine (MACHINE_FOLDER is <home>/contexts/<ctx>/machines/<id>).
 */
async function recordBackupFolder(d: MachineDeps, appName: string) {
  const [home] = candidateHomes({ MACHINE_FOLDER: d.machine.machineFolder });
  if (!home) return;
  await rememberFolder(home, {
    machineId: d.machine.machineId,
    appName,
    dokploy: d.config.serverUrl,
  }).catch((err) =>
    d.log.warn(
      `could not record where its backups are (${
        (err as Error).message
      }); list --backups still finds them by a search of the bucket`,
    )
  );
}
