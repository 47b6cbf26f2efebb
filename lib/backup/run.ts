/**
 * `backup <machine>`: one backup now, through the machine's own Dokploy schedule row,
 * waited for. Dokploy's runManually answers nothing either way, so the outcome is read
 * from the row's runs (deployment.allByType) and the object from the bucket.
 */
import type { DokployApi } from "../dokploy/api.ts";
import type { BackupApi, BackupRun, VolumeBackup } from "../dokploy/backups.ts";
import { ProviderError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { sleep } from "../ssh/ready.ts";
import { type BackupFile, backupsOf } from "./bucket.ts";
import { isGuardContainer } from "./guard.ts";
import { ours } from "./register.ts";

/** A machine as the project snapshot knows it (no state.json needed). */
export interface BackedMachine {
  machineId: string;
  composeId: string;
  appName: string;
  serverId: string | null;
}

export interface BackupOutcome {
  file: BackupFile | null;
  durationMs: number;
  run: BackupRun;
}

/** The machine's schedule row, or a one-line error saying how to get one. */
export async function scheduleRowOf(api: BackupApi, m: BackedMachine): Promise<VolumeBackup> {
  const row = ours(await api.volumeBackupsOf(m.composeId), m.machineId);
  if (!row) {
    throw new ProviderError(
      `machine ${m.machineId} has no backup schedule; set BACKUP_DESTINATION (devpod provider set-options <provider> -o BACKUP_DESTINATION=<destination>) and start the machine once (devpod up)`,
    );
  }
  return row;
}

export async function backupNow(
  api: BackupApi,
  dokploy: DokployApi,
  m: BackedMachine,
  log: Logger,
  signal?: AbortSignal,
): Promise<BackupOutcome> {
  const row = await scheduleRowOf(api, m);
  await requireGuardRunning(dokploy, m);
  const started = Date.now();
  const before = (await api.runs(row.volumeBackupId))[0];
  let run: BackupRun;
  if (before?.status === "running") {
    log.info(`a backup of machine ${m.machineId} is running already; waiting for it`);
    run = await waitForRun(api, row.volumeBackupId, before.deploymentId, signal);
  } else {
    log.info(`backing machine ${m.machineId} up (Dokploy snapshots it through its backup guard)`);
    await api.runVolumeBackup(row.volumeBackupId);
    const newest = (await api.runs(row.volumeBackupId))[0];
    if (!newest || newest.deploymentId === before?.deploymentId) {
      throw new ProviderError(
        `Dokploy recorded no run of the backup of machine ${m.machineId}; check Dokploy's log`,
      );
    }
    run = newest.status === "running"
      ? await waitForRun(api, row.volumeBackupId, newest.deploymentId, signal)
      : newest;
  }
  if (run.status !== "done") {
    const tail = (await api.runLog(run.deploymentId).catch(() => "")).trim().split("\n")
      .filter((l) => l.trim()).slice(-3).join(" | ");
    throw new ProviderError(
      `the backup of machine ${m.machineId} failed${tail ? `: ${tail.slice(0, 400)}` : ""}`,
    );
  }
  const files = await backupsOf(api, row.destinationId ?? "", m).catch(() => []);
  return { file: files[0] ?? null, durationMs: Date.now() - started, run };
}

/**
 * Dokploy finds the guard with `docker ps` (running containers only): a machine stopped
 * through Dokploy stopped its guard too, and its backup would upload an empty tar.
 */
async function requireGuardRunning(dokploy: DokployApi, m: BackedMachine): Promise<void> {
  const containers = await dokploy.containers(m.appName, m.serverId);
  const guard = containers.find((c) => isGuardContainer(c.name));
  if (containers.length > 0 && guard?.state.toLowerCase() !== "running") {
    throw new ProviderError(
      `the backup guard of machine ${m.machineId} is not running (the machine was stopped through Dokploy, or made before backups were on); start it with devpod up, stop it with devpod stop, then back up`,
    );
  }
}

const RUN_WAIT_MS = 3_600_000;

async function waitForRun(
  api: BackupApi,
  volumeBackupId: string,
  deploymentId: string,
  signal?: AbortSignal,
): Promise<BackupRun> {
  const deadline = Date.now() + RUN_WAIT_MS;
  while (Date.now() < deadline && !signal?.aborted) {
    const run = (await api.runs(volumeBackupId)).find((r) => r.deploymentId === deploymentId);
    if (run && run.status !== "running") return run;
    await sleep(1000, signal);
  }
  throw new ProviderError("the backup did not end within an hour; check it in Dokploy");
}
