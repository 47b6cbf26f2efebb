/**
 * doctor's backup lines: the destination (Dokploy reaches its bucket from where each
 * machine's backups run) and each machine's last backup — failed, or older than twice
 * its schedule, fails the check with the fix.
 */
import type { ProviderConfig } from "../config.ts";
import type { DokployApi } from "../dokploy/api.ts";
import { BackupApi } from "../dokploy/backups.ts";
import type { MachineInfo } from "../machine/inventory.ts";
import type { Check } from "../servers/doctor.ts";
import { checkDestination, resolveDestination } from "./destination.ts";
import { describeLastBackup, type LastBackup, lastBackupOf } from "./inventory.ts";
import { periodMs } from "./schedule.ts";

export async function checkBackups(
  config: ProviderConfig,
  api: DokployApi,
  machines: MachineInfo[],
  report: (c: Check) => Promise<void>,
  now = Date.now(),
): Promise<void> {
  const backed = machines.filter((m) => m.backups);
  if (!config.backup) {
    await report({
      ok: true,
      name: "backups",
      detail: backed.length
        ? `BACKUP_DESTINATION is empty: ${backed.length} machine(s) with backups drop them at their next start`
        : "off (set BACKUP_DESTINATION to a Dokploy S3 destination to back homes up)",
    });
    if (!backed.length) return;
  }
  const backups = new BackupApi(api.client);
  if (config.backup) {
    try {
      const dest = await resolveDestination(backups, config.backup.destination);
      const servers = [...new Set([null, ...backed.map((m) => m.serverId)])];
      for (const serverId of servers) await checkDestination(backups, dest, serverId);
      await report({
        ok: true,
        name: "backup destination",
        detail: `${dest.name}: Dokploy reaches bucket ${dest.bucket ?? "?"}${
          servers.length > 1 ? ` from ${servers.length} servers` : ""
        }`,
      });
    } catch (err) {
      await report({ ok: false, name: "backup destination", detail: (err as Error).message });
    }
  }
  for (const m of backed) {
    const last = await lastBackupOf(backups, m).catch((err) => err as Error);
    if (last instanceof Error || last === null) {
      await report({
        ok: false,
        name: `backup ${m.machineId}`,
        detail: last
          ? `its backups could not be read (${last.message})`
          : "it has a backup guard but no schedule; start it once (devpod up) to register one",
      });
      continue;
    }
    const ok = backupIsCurrent(last, now);
    const late = !ok && last.status !== "failed";
    const fix = last.status === "failed"
      ? `; see the run's log in Dokploy (Volume Backups of ${m.appName}) and try backup ${m.machineId}`
      : late
      ? `; it is older than twice its schedule (${last.schedule}): is the machine's backup guard running? (devpod up, then devpod stop)`
      : "";
    await report({
      ok,
      name: `backup ${m.machineId}`,
      detail: `last backup ${describeLastBackup(last, now)}, schedule "${last.schedule}", keeps ${
        last.keep ?? "all"
      }${fix}`,
    });
  }
}

/**
 * A last backup that is fine: running, or ok (or none yet) and newer than twice the
 * schedule's period — counted from the schedule's registration when none ran yet.
 */
export function backupIsCurrent(last: LastBackup, now = Date.now()): boolean {
  if (last.status === "running") return true;
  if (last.status === "failed") return false;
  const from = last.status === "ok" ? last.at : last.since;
  if (from === null || last.schedule === null) return true;
  return now - Date.parse(from) <= 2 * periodMs(last.schedule);
}
