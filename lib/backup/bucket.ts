/**
 * A machine's backups as they lie in the bucket: Dokploy names each
 * `<appName>_backup/<machineId>/<appName>_backup-<ISO time, ':' and '.' as '-'>.tar`.
 * Listed through Dokploy (backup.listBackupFiles), never with our own S3 client: the
 * provider holds no bucket keys.
 */
import type { BackupApi, BucketObject } from "../dokploy/backups.ts";
import { backupFolder, GUARD_SERVICE } from "./guard.ts";

/** A tar of an empty volume (a run whose guard was not there): never a backup to restore. */
export const EMPTY_TAR_BYTES = 10_240;

export interface BackupFile {
  key: string;
  machineId: string;
  appName: string;
  sizeBytes: number;
  /** When Dokploy took it, from its name; null when the name is not Dokploy's. */
  takenAt: string | null;
  /** False for an empty tar: a failed run uploads one (see EMPTY_TAR_BYTES). */
  complete: boolean;
}

const KEY = /^(.+)_([a-z0-9-]+)\/([^/]+)\/(.+)-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)\.tar$/;

/** Reads a key back; null when it is not one of our machines' backups. */
export function parseBackupKey(key: string, sizeBytes = 0): BackupFile | null {
  const m = KEY.exec(key);
  if (!m || m[2] !== GUARD_SERVICE) return null;
  const t = m[5];
  const takenAt = `${t.slice(0, 10)}T${t.slice(11, 13)}:${t.slice(14, 16)}:${t.slice(17, 19)}.${
    t.slice(20, 23)
  }Z`;
  return {
    key,
    appName: m[1],
    machineId: m[3],
    sizeBytes,
    takenAt,
    complete: sizeBytes > EMPTY_TAR_BYTES,
  };
}

/** Newest first. */
export function byNewest(a: BackupFile, b: BackupFile): number {
  return String(b.takenAt).localeCompare(String(a.takenAt));
}

/** One machine's backups, newest first (Dokploy lists at most 100 entries a folder). */
export async function backupsOf(
  api: BackupApi,
  destinationId: string,
  m: { appName: string; machineId: string; serverId: string | null },
): Promise<BackupFile[]> {
  const entries = await api.listFolder(
    destinationId,
    backupFolder(m.appName, m.machineId),
    m.serverId,
  );
  return files(entries).sort(byNewest);
}

/**
 * Every machine's backups in the bucket, of deleted machines too: the root's
 * `devpod-…_backup/` folders, then their machine folders.
 */
export async function allBackups(api: BackupApi, destinationId: string): Promise<BackupFile[]> {
  const root = await api.listFolder(destinationId, "", null);
  const apps = root.filter((e) => e.isDir && e.key.endsWith(`_${GUARD_SERVICE}`));
  const machineDirs = (await Promise.all(
    apps.map((a) => api.listFolder(destinationId, `${a.key}/`, null)),
  )).flat().filter((e) => e.isDir);
  const found = await Promise.all(
    machineDirs.map((dir) => api.listFolder(destinationId, `${dir.key}/`, null)),
  );
  return files(found.flat()).sort(byNewest);
}

function files(entries: BucketObject[]): BackupFile[] {
  return entries.filter((e) => !e.isDir).flatMap((e) => {
    const f = parseBackupKey(e.key, e.size);
    return f ? [f] : [];
  });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
