/**
 * `restore <machine>`: a backup put back into a machine's home volume — the machine's
 * own after a mistake, or another (`--into`) after `devpod delete`.
 *
 * Through Dokploy's own restore (the tRPC subscription): it replaces a volume only when
 * no container, running or stopped, uses it, so the target is stopped and its containers
 * removed first; compose.start makes them again from the same file. Dokploy swallows its
 * failures, so the streamed log is read: it must list our snapshot's manifest and end in
 * Dokploy's success line. Before anything is replaced the target's home is backed up, so
 * a restore can itself be undone.
 */
import type { DokployApi } from "../dokploy/api.ts";
import type { BackupApi } from "../dokploy/backups.ts";
import { ProviderError } from "../errors.ts";
import { sleep, sshGreets } from "../ssh/ready.ts";
import type { Logger } from "../log.ts";
import {
  backupByKey,
  type BackupFile,
  backupsOf,
  formatBytes,
  type KnownFolder,
  machineBackups,
  parseBackupKey,
} from "./bucket.ts";
import { homeVolumeName, isGuardContainer } from "./guard.ts";
import { type BackedMachine, backupNow, scheduleRowOf } from "./run.ts";

export const MANIFEST = ".devpod-backup.json";

export interface RestoreRequest {
  /** Whose backups: a machine id (it may be deleted). */
  source: string;
  from?: string;
  latest?: boolean;
  /** The machine whose home is replaced, found in the project. */
  target: BackedMachine;
  /** The source machine when it still exists (its folder in the bucket is known then). */
  sourceMachine: BackedMachine | null;
  /** Folders known without a search: live machines' and those delete recorded. */
  known: KnownFolder[];
  destinationId: string;
  /** Replace the home even when it cannot be backed up first. */
  force?: boolean;
  /** Where the target's sshd answers once it is back, and how long it may take. */
  ssh: { host: string; port: number; timeoutMs: number };
}

export interface RestoreOutcome {
  file: BackupFile;
  /** The target's home as it was, backed up before the restore (null with --force). */
  safety: BackupFile | null;
  durationMs: number;
}

export async function restoreHome(
  api: BackupApi,
  dokploy: DokployApi,
  r: RestoreRequest,
  log: Logger,
  signal?: AbortSignal,
): Promise<RestoreOutcome> {
  const file = await chooseBackup(api, r);
  const t = r.target;
  log.info(
    `restoring ${file.key} (${
      formatBytes(file.sizeBytes)
    }, taken ${file.takenAt}) into the home of machine ${t.machineId}`,
  );
  let safety: BackupFile | null = null;
  try {
    await requireSurvivesSafetyCopy(api, r, file);
    safety = (await backupNow(api, dokploy, t, log, signal)).file;
    if (safety) log.info(`the home of ${t.machineId} as it was is kept as ${safety.key}`);
  } catch (err) {
    if (!r.force) {
      throw new ProviderError(
        `machine ${t.machineId}'s home could not be backed up before it is replaced (${
          (err as Error).message
        }); fix that, or add --force to replace it without a copy`,
      );
    }
    log.warn(`--force: replacing the home of ${t.machineId} without a copy of it`);
  }
  const started = Date.now();
  log.info(`stopping machine ${t.machineId} and removing its containers (volumes are kept)`);
  // The guard goes first, killed: a stop of it is a backup's signal, and it would copy the
  // home it is about to lose into its snapshot.
  for (const c of await dokploy.containers(t.appName, t.serverId)) {
    if (isGuardContainer(c.name)) await api.removeContainer(c.containerId, t.serverId);
  }
  await dokploy.stopCompose(t.composeId);
  for (const c of await dokploy.containers(t.appName, t.serverId)) {
    await api.removeContainer(c.containerId, t.serverId);
  }
  const lines = await api.restoreVolume({
    backupFileName: file.key,
    destinationId: r.destinationId,
    volumeName: homeVolumeName(t.appName),
    composeId: t.composeId,
    serverId: t.serverId,
  }, (line) => log.debug(`restore: ${line}`));
  const problem = restoreProblem(lines);
  // Whatever happened, the machine comes back (compose.start makes its containers again).
  log.info(`starting machine ${t.machineId}`);
  await dokploy.startCompose(t.composeId);
  const up = await waitForGreeting(r.ssh, signal);
  if (problem) {
    throw new ProviderError(
      `the restore into machine ${t.machineId} failed: ${problem}${
        safety ? `; its home as it was is backed up as ${safety.key} (restore --from it)` : ""
      }`,
    );
  }
  if (!up) {
    throw new ProviderError(
      `the home of machine ${t.machineId} is restored, but its SSH server did not answer on ${r.ssh.host}:${r.ssh.port} within ${
        r.ssh.timeoutMs / 1000
      } s; run 'devpod up' for it, or 'devpod-provider-dokploy doctor'`,
    );
  }
  return { file, safety, durationMs: Date.now() - started };
}

/** The machine is back when its sshd greets (Docker's proxy accepts TCP before that). */
async function waitForGreeting(
  ssh: RestoreRequest["ssh"],
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + ssh.timeoutMs;
  while (!signal?.aborted) {
    if (await sshGreets(ssh.host, ssh.port)) return true;
    if (Date.now() > deadline) return false;
    await sleep(500, signal);
  }
  return false;
}

/**
 * Dokploy's retention runs after every upload: the copy of the target's home, in the same
 * folder as the chosen backup, must not push that backup out (BACKUP_KEEP=1, say).
 */
async function requireSurvivesSafetyCopy(api: BackupApi, r: RestoreRequest, file: BackupFile) {
  const t = r.target;
  if (file.appName !== t.appName || file.machineId !== t.machineId) return;
  const keep = (await scheduleRowOf(api, t)).keepLatestCount ?? 0;
  const newerOrSame = (await backupsOf(api, r.destinationId, t)).findIndex((f) =>
    f.key === file.key
  );
  if (keep > 0 && newerOrSame >= keep - 1) {
    throw new Error(
      `with ${keep} backups kept, a copy of the current home would delete ${file.key} itself; raise BACKUP_KEEP (then start the machine once)`,
    );
  }
}

/** Why Dokploy's restore log does not show a complete restore of one of our snapshots. */
export function restoreProblem(lines: string[]): string | null {
  const text = lines.join("\n");
  // Dokploy's own failure lines carry ❌; tar and rclone say theirs in their own words.
  // Not a bare "error": file names (./error.log) and keys (machine "error-42") hold it.
  const failed = lines.find((l) => /❌|^tar: |\bERROR\s*:|Failed to /.test(l.trim()));
  if (failed) return failed.trim().slice(0, 300);
  if (!lines.some((l) => l.trim() === `./${MANIFEST}` || l.trim().endsWith(`/${MANIFEST}`))) {
    return "the backup holds no snapshot manifest (it is not a complete snapshot of a home)";
  }
  if (!/Volume restore completed/.test(text)) return "Dokploy did not report the restore complete";
  return null;
}

async function chooseBackup(api: BackupApi, r: RestoreRequest): Promise<BackupFile> {
  if (!r.from && !r.latest) {
    throw new ProviderError(
      "name the backup to restore: --latest, or --from <key> (list --backups shows the keys)",
    );
  }
  if (r.from) {
    // The key names its machine (whose ownership the caller checked) and its folder.
    const owner = parseBackupKey(r.from)?.machineId;
    if (owner && owner !== r.source) {
      throw new ProviderError(
        `${r.from} is a backup of machine ${owner}, not ${r.source}: restore ${owner} --from it`,
      );
    }
    const found = await backupByKey(api, r.destinationId, r.from);
    if (!found) {
      throw new ProviderError(
        `no backup ${r.from} in BACKUP_DESTINATION; list --backups shows the keys`,
      );
    }
    if (!found.complete) {
      throw new ProviderError(`${r.from} is an empty tar (a failed run): choose another`);
    }
    return found;
  }
  const files = r.sourceMachine
    ? await backupsOf(api, r.destinationId, r.sourceMachine)
    : await machineBackups(api, r.destinationId, r.source, r.known);
  const newest = files.find((f) => f.complete);
  if (!newest) {
    throw new ProviderError(
      `machine ${r.source} has no complete backup in BACKUP_DESTINATION; list --backups shows what there is`,
    );
  }
  return newest;
}
