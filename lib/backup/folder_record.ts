/**
 * Where a deleted machine's backups lie, remembered on this computer by `delete`. The
 * bucket's top folder is named after Dokploy's appName (with its random suffix), and that
 * name goes with the service: without this record only a search of the bucket's root
 * finds the folder again (bucket.ts), which some S3 servers answer with nothing.
 * One small file per service (no two deletes write the same file), under DEVPOD_HOME.
 */
import { join } from "node:path";
import { backupFolder } from "./guard.ts";

export interface RecordedFolder {
  machineId: string;
  /** `<appName>_backup/<machineId>/` */
  folder: string;
  /** The Dokploy it was recorded against: another server's records are not ours. */
  dokploy: string;
}

export function recordDir(devpodHome: string): string {
  return join(devpodHome, "devpod-provider-dokploy", "backup-folders");
}

export async function rememberFolder(
  devpodHome: string,
  m: { machineId: string; appName: string; dokploy: string },
): Promise<void> {
  const dir = recordDir(devpodHome);
  await Deno.mkdir(dir, { recursive: true });
  const record: RecordedFolder = {
    machineId: m.machineId,
    folder: backupFolder(m.appName, m.machineId),
    dokploy: m.dokploy,
  };
  const file = join(dir, `${m.appName}.json`);
  const tmp = `${file}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(record) + "\n");
  await Deno.rename(tmp, file);
}

/** Every recorded folder for this Dokploy (none when nothing was recorded). */
export async function recordedFolders(
  devpodHome: string,
  dokploy: string,
): Promise<RecordedFolder[]> {
  const found: RecordedFolder[] = [];
  try {
    for await (const e of Deno.readDir(recordDir(devpodHome))) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      try {
        const r = JSON.parse(await Deno.readTextFile(join(recordDir(devpodHome), e.name)));
        if (r?.dokploy === dokploy && typeof r.folder === "string") found.push(r);
      } catch { /* a half-written or foreign file: not a record */ }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return found;
}
