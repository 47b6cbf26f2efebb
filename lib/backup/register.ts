/**
 * The Dokploy volume backup of one machine: registered by `create` (and by `start` of a
 * machine made before BACKUP_DESTINATION was set), updated when the options change,
 * removed by `delete`. Its files stay in the bucket: only a person deletes those.
 *
 * What Dokploy backs up is the guard's snapshot volume, with `turnOff` on the guard
 * (lib/backup/guard.ts): never the live home, and never the machine's container.
 */
import { BackupApi, type VolumeBackup, type VolumeBackupInput } from "../dokploy/backups.ts";
import type { MachineDeps } from "../machine/deps.ts";
import { type BackupRecord, type MachineState, writeState } from "../machine/state.ts";
import { resolveDestination } from "./destination.ts";
import { GUARD_SERVICE, snapshotVolumeName } from "./guard.ts";
import { scheduleFor } from "./schedule.ts";

/** The row's name in Dokploy's UI. */
const rowName = (machineId: string) => `devpod ${machineId} home`;

export function backupApi(d: Pick<MachineDeps, "api">): BackupApi {
  return new BackupApi(d.api.client);
}

/** The row this machine should have, for the options it runs with now. */
export function desiredRow(
  d: MachineDeps,
  state: Pick<MachineState, "composeId" | "appName">,
  destinationId: string,
): VolumeBackupInput {
  const backup = d.config.backup!;
  return {
    name: rowName(d.machine.machineId),
    volumeName: snapshotVolumeName(state.appName),
    prefix: d.machine.machineId,
    cronExpression: scheduleFor(backup.schedule, d.machine.machineId),
    destinationId,
    serviceName: GUARD_SERVICE,
    composeId: state.composeId,
    turnOff: true,
    keepLatestCount: backup.keep,
    enabled: true,
  };
}

/**
 * Makes Dokploy's schedule match the options: nothing to do (no call) when state.json
 * already records it; otherwise found by the machine's rows, created or replaced. With
 * backups off, a schedule this machine had is removed (its guard is gone from the spec).
 */
export async function syncBackupSchedule(d: MachineDeps, state: MachineState): Promise<void> {
  const backup = d.config.backup;
  if (!backup) {
    if (!state.backup) return;
    await removeBackupSchedule(d, state.composeId, state.backup);
    delete state.backup;
    await writeState(d.machine.machineFolder, state);
    return;
  }
  const schedule = scheduleFor(backup.schedule, d.machine.machineId);
  const known = state.backup;
  if (
    known && known.destination === backup.destination && known.schedule === schedule &&
    known.keep === backup.keep
  ) return;
  const api = backupApi(d);
  const dest = await resolveDestination(api, backup.destination);
  const want = desiredRow(d, state, dest.destinationId);
  const mine = ours(await api.volumeBackupsOf(state.composeId), d.machine.machineId);
  let volumeBackupId: string;
  if (mine) {
    d.log.info(`updating the backup schedule of machine ${d.machine.machineId} (${schedule})`);
    await api.updateVolumeBackup(mine.volumeBackupId, want);
    volumeBackupId = mine.volumeBackupId;
  } else {
    d.log.info(
      `backing machine ${d.machine.machineId} up to ${dest.name} at "${schedule}", keeping ${backup.keep}`,
    );
    const made = await api.createVolumeBackup(want);
    // Older servers answer without the row: read it back.
    volumeBackupId = made?.volumeBackupId ??
      ours(await api.volumeBackupsOf(state.composeId), d.machine.machineId)?.volumeBackupId ??
      "";
    if (!volumeBackupId) throw new Error("volumeBackups.create made no row");
  }
  const record: BackupRecord = {
    volumeBackupId,
    destination: backup.destination,
    destinationId: dest.destinationId,
    schedule,
    keep: backup.keep,
  };
  state.backup = record;
  await writeState(d.machine.machineFolder, state);
}

/**
 * syncBackupSchedule for create and start: a machine is never failed by its backups.
 * A failure is said once; the next start tries again.
 */
export async function scheduleBackups(d: MachineDeps, state: MachineState): Promise<void> {
  try {
    await syncBackupSchedule(d, state);
  } catch (err) {
    d.log.warn(
      `the backups of machine ${d.machine.machineId} are not scheduled (${
        (err as Error).message
      }); the next start tries again`,
    );
  }
}

/** This machine's row among a service's volume backups (ours: the guard's snapshot). */
export function ours(rows: VolumeBackup[], machineId: string): VolumeBackup | undefined {
  return rows.find((r) => r.serviceName === GUARD_SERVICE && r.prefix === machineId) ??
    rows.find((r) => r.name === rowName(machineId));
}

/**
 * Unschedules, then deletes the row: Dokploy's delete alone leaves its job running until
 * Dokploy restarts (dokploy-api.md §9). The bucket's files are kept.
 */
export async function removeBackupSchedule(
  d: Pick<MachineDeps, "api" | "log"> & { machine: { machineId: string } },
  composeId: string,
  known?: BackupRecord,
): Promise<void> {
  const api = backupApi(d);
  const rows = await api.volumeBackupsOf(composeId).catch(() => [] as VolumeBackup[]);
  const row = rows.find((r) => r.volumeBackupId === known?.volumeBackupId) ??
    ours(rows, d.machine.machineId);
  if (!row) return;
  await api.updateVolumeBackup(row.volumeBackupId, { ...rowInput(row), enabled: false });
  await api.deleteVolumeBackup(row.volumeBackupId);
  d.log.info(
    `removed the backup schedule of machine ${d.machine.machineId}; its backups stay in the bucket`,
  );
}

/** A row as Dokploy's full-replace update takes it back. */
function rowInput(r: VolumeBackup): VolumeBackupInput {
  return {
    name: r.name,
    volumeName: r.volumeName,
    prefix: r.prefix ?? "",
    cronExpression: r.cronExpression ?? "0 3 * * *",
    destinationId: r.destinationId ?? "",
    serviceName: r.serviceName ?? GUARD_SERVICE,
    composeId: r.composeId ?? "",
    turnOff: r.turnOff ?? true,
    keepLatestCount: r.keepLatestCount ?? 7,
    enabled: r.enabled ?? false,
  };
}
