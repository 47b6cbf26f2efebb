/**
 * A machine's backups as they lie in the bucket: Dokploy names each
 * `<appName>_backup/<machineId>/<appName>_backup-<ISO time, ':' and '.' as '-'>.tar`.
 * Listed through Dokploy (backup.listBackupFiles), never with our own S3 client: the
 * provider holds no bucket keys.
 *
 * A machine's folder is known while it lives (its appName) and after `delete` from the
 * record delete leaves (folder_record.ts). Otherwise it is searched for at the root with a
 * non-empty term (Dokploy's REST refuses an empty search): real S3 answers that search
 * with the root's folders; an S3 server that does not (s3rver 3.7.1) hides only those.
 */
import type { BackupApi, BucketObject } from "../dokploy/backups.ts";
import { appNamePrefix } from "../machine/naming.ts";
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

/** A machine's folder in the bucket that is known without searching for it. */
export interface KnownFolder {
  machineId: string;
  /** `<appName>_backup/<machineId>/` */
  folder: string;
  /**
   * A deleted machine's folder that `delete` (or `cleanup`) recorded in a DevPod home on this
   * computer: its owner's. A teammate's deleted machine is found by the root search only.
   */
  recordedHere?: boolean;
}

/** What every app's name starts with (lib/machine/naming.ts): the root search's term. */
const OUR_APPS = "devpod-";
/** Dokploy cuts every answer of listBackupFiles at 100 entries. */
const ANSWER_LIMIT = 100;
/** What follows "devpod-" in an appName (naming.ts keeps [a-z0-9-]); '_' joins the service. */
const NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Every backup in the bucket: of live machines, of deleted ones (recorded, and any other
 * `devpod-…_backup/<machine>/` folder the root search finds), newest first.
 */
export async function allBackups(
  api: BackupApi,
  destinationId: string,
  known: KnownFolder[],
): Promise<BackupFile[]> {
  const found = await foldersAtRoot(api, destinationId, OUR_APPS);
  return await filesIn(api, destinationId, [...known.map((k) => k.folder), ...found]);
}

/**
 * One machine's backups, of a deleted one too, newest first: its known folders, else the
 * folders the root search finds under its appName's prefix.
 */
export async function machineBackups(
  api: BackupApi,
  destinationId: string,
  machineId: string,
  known: KnownFolder[],
): Promise<BackupFile[]> {
  let folders = known.filter((k) => k.machineId === machineId).map((k) => k.folder);
  if (folders.length === 0) {
    folders = (await foldersAtRoot(api, destinationId, appNamePrefix(machineId)))
      .filter((f) => f.split("/")[1] === machineId);
  }
  const files = await filesIn(api, destinationId, folders);
  return files.filter((f) => f.machineId === machineId);
}

/** The backup with this key, found in its own folder (the key names it). */
export async function backupByKey(
  api: BackupApi,
  destinationId: string,
  key: string,
): Promise<BackupFile | null> {
  const wanted = parseBackupKey(key);
  if (!wanted) return null;
  const files = await filesIn(api, destinationId, [backupFolder(wanted.appName, wanted.machineId)]);
  return files.find((f) => f.key === key) ?? null;
}

async function filesIn(
  api: BackupApi,
  destinationId: string,
  folders: string[],
): Promise<BackupFile[]> {
  const listed = await Promise.all(
    [...new Set(folders)].map((f) => api.listFolder(destinationId, f, null)),
  );
  const byKey = new Map(files(listed.flat()).map((f) => [f.key, f]));
  return [...byKey.values()].sort(byNewest);
}

/** `<app>_backup/<machine>/` folders under the root's folders whose name holds `term`. */
async function foldersAtRoot(
  api: BackupApi,
  destinationId: string,
  term: string,
): Promise<string[]> {
  const apps = (await searchRoot(api, destinationId, term))
    .filter((e) => e.isDir && e.key.endsWith(`_${GUARD_SERVICE}`));
  const inside = await Promise.all(
    apps.map((a) => api.listFolder(destinationId, `${a.key}/`, null)),
  );
  return inside.flat().filter((e) => e.isDir).map((e) => `${e.key}/`);
}

/** The root's entries holding `term`; an answer cut at the limit is asked again, narrower. */
async function searchRoot(
  api: BackupApi,
  destinationId: string,
  term: string,
): Promise<BucketObject[]> {
  const found = await api.searchRoot(destinationId, term);
  if (found.length < ANSWER_LIMIT || term.length > 64) return found;
  const all = new Map(found.map((e) => [e.key, e]));
  // Our names hold `term` followed by one of these: none of ours is missed.
  for (const c of NAME_CHARS) {
    for (const e of await searchRoot(api, destinationId, term + c)) all.set(e.key, e);
  }
  return [...all.values()];
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
