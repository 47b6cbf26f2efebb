/**
 * One run of a volume backup as Dokploy's runVolumeBackup does it (utils/volume-backups/
 * utils.ts): a deployment row with its log (createDeploymentVolumeBackup, which first
 * trims the row's runs to the newest 10), the backup script on the service's server with
 * all its output appended to that log, retention after a successful upload, then `done`;
 * or, when the script fails, `rm -rf <dir>/*.tar` and `error`. Nothing is thrown for a
 * failed script: only the row tells.
 *
 * A Dokploy restart mid-run kills the script and leaves the row `running`, like a lost
 * deploy (see deploy_job.ts).
 */
import type { Ctx } from "../context.ts";
import { basePath, execOn } from "../dokploy_exec.ts";
import { ApiError, notFound } from "../errors.ts";
import type { DeploymentRow, VolumeBackupRow } from "../store.ts";
import { newId, now } from "../store.ts";
import { backupScript, type BackupService, retentionCommand } from "./commands.ts";

export function findVolumeBackup(ctx: Ctx, volumeBackupId: unknown): VolumeBackupRow {
  const vb = ctx.store.volumeBackups.get(String(volumeBackupId));
  if (!vb) throw notFound("Volume backup");
  return vb;
}

/** The compose service a row belongs to (null: none, or no such row). */
export function backupService(ctx: Ctx, vb: VolumeBackupRow) {
  return vb.composeId ? ctx.store.composes.get(vb.composeId) ?? null : null;
}

/** date-fns `yyyy-MM-dd:HH:mm:ss` in UTC (Dokploy's container time). */
function logStamp(at: Date): string {
  return at.toISOString().slice(0, 19).replace("T", ":");
}

/**
 * Where a file of `serverId` lives here. Dokploy stores `/etc/dokploy/…` for the Dokploy
 * host and for servers alike; here each server's `/etc/dokploy` is its own directory, so
 * a path read on the wrong machine finds nothing, as it would there.
 */
function onServer(ctx: Ctx, serverId: string | null, hostPath: string): string {
  return serverId ? basePath(ctx, serverId) + hostPath.slice(ctx.dataDir.length) : hostPath;
}

/** runVolumeBackup. Throws only where Dokploy's would (no row, no deployment). */
export async function runVolumeBackup(ctx: Ctx, volumeBackupId: string): Promise<void> {
  const lifetime = ctx.dokploy.lifetime;
  const vb = findVolumeBackup(ctx, volumeBackupId);
  const compose = backupService(ctx, vb);
  const serverId = compose?.serverId ?? null;
  const deployment = await createDeployment(ctx, vb, serverId);
  if (lifetime.aborted) return;
  const dir = `${basePath(ctx, serverId)}/volume-backups/${vb.appName}`;
  try {
    const destination = ctx.store.destinations.get(vb.destinationId);
    if (!destination) throw notFound("Destination");
    const service: BackupService | null = compose
      ? { appName: compose.appName, composeType: compose.composeType }
      : null;
    if (vb.turnOff && vb.serviceType === "compose" && !compose) throw notFound("Compose");
    const { script } = backupScript({
      vb,
      destination,
      compose: service,
      base: basePath(ctx, serverId),
    });
    const log = onServer(ctx, serverId, deployment.logPath);
    await execOn(ctx, serverId, `(${script}) >> ${log} 2>&1`);
    if (lifetime.aborted) return;
    if (vb.keepLatestCount && vb.keepLatestCount > 0) {
      // cleanupOldVolumeBackups: its failure is only logged.
      await execOn(ctx, serverId, retentionCommand(vb, destination, service, vb.keepLatestCount))
        .catch(() => {});
      if (lifetime.aborted) return;
    }
    finish(deployment, "done");
  } catch {
    if (lifetime.aborted) return;
    // If this fails too (the server went away), the row stays `running`.
    await execOn(ctx, serverId, `rm -rf ${dir}/*.tar`);
    if (lifetime.aborted) return;
    finish(deployment, "error");
  }
}

function finish(d: DeploymentRow, status: "done" | "error") {
  d.status = status;
  d.finishedAt = now();
}

/** createDeploymentVolumeBackup: trims old runs, makes the log, inserts `running`. */
async function createDeployment(
  ctx: Ctx,
  vb: VolumeBackupRow,
  serverId: string | null,
): Promise<DeploymentRow> {
  await removeOldRuns(ctx, vb.volumeBackupId, serverId);
  const at = new Date();
  const dir = `${ctx.dataDir}/volume-backups/${vb.appName}`;
  const logPath = `${dir}/${vb.appName}-${logStamp(at)}.log`;
  const row = (extra: Partial<DeploymentRow>): DeploymentRow => {
    const d: DeploymentRow = {
      deploymentId: newId(),
      title: "Volume Backup",
      description: "Volume Backup",
      status: "running",
      logPath,
      pid: null,
      applicationId: null,
      composeId: null,
      serverId: null,
      isPreviewDeployment: false,
      previewDeploymentId: null,
      createdAt: now(),
      startedAt: at.toISOString(),
      finishedAt: null,
      errorMessage: null,
      scheduleId: null,
      backupId: null,
      rollbackId: null,
      volumeBackupId: vb.volumeBackupId,
      ...extra,
    };
    ctx.store.deployments.set(d.deploymentId, d);
    return d;
  };
  try {
    if (serverId) {
      await execOn(
        ctx,
        serverId,
        `mkdir -p ${onServer(ctx, serverId, dir)}; ` +
          `echo "Initializing volume backup" >> ${onServer(ctx, serverId, logPath)};`,
      );
    } else {
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(logPath, "Initializing volume backup\n");
    }
  } catch (e) {
    row({
      status: "error",
      logPath: "",
      errorMessage: `An error have occurred: ${(e as Error).message}`,
      finishedAt: now(),
    });
    throw new ApiError("BAD_REQUEST", "Error creating the deployment");
  }
  return row({});
}

/** removeLastTenDeployments: past 10 runs, the older ones and their logs go first. */
async function removeOldRuns(ctx: Ctx, volumeBackupId: string, serverId: string | null) {
  const old = ctx.store.deploymentsOfVolumeBackup(volumeBackupId).slice(10);
  if (!old.length) return;
  let command = "";
  for (const d of old) {
    ctx.store.deployments.delete(d.deploymentId);
    if (!d.logPath) continue;
    // removeDeployment's own `rm -f` runs on the Dokploy host (the row has no serverId).
    await Deno.remove(d.logPath).catch(() => {});
    command += `rm -rf ${onServer(ctx, serverId, d.logPath)};`;
  }
  if (serverId && command) await execOn(ctx, serverId, command);
}
