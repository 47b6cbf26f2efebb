/**
 * Each machine's last backup, for `list`, `doctor` and `describe`: its schedule row,
 * its newest run (deployment.allByType) and, when that run succeeded, the object it left.
 */
import { BackupApi } from "../dokploy/backups.ts";
import type { ExtraLines } from "../machine/describe.ts";
import { hasBackupGuard } from "./guard.ts";
import { backupsOf, formatBytes } from "./bucket.ts";
import { ours } from "./register.ts";
import type { BackedMachine } from "./run.ts";

export interface LastBackup {
  /** The row's cron expression. */
  schedule: string | null;
  keep: number | null;
  /** The newest run: ok, failed, running, or none yet. */
  status: "ok" | "failed" | "running" | "none";
  /** When that run started (finished for ok/failed). */
  at: string | null;
  sizeBytes: number | null;
  key: string | null;
  /** When the schedule was registered: a machine never backed up is late from then on. */
  since: string | null;
}

/** Null when the machine has no backup schedule. */
export async function lastBackupOf(api: BackupApi, m: BackedMachine): Promise<LastBackup | null> {
  const row = ours(await api.volumeBackupsOf(m.composeId), m.machineId);
  if (!row) return null;
  const run = (await api.runs(row.volumeBackupId))[0];
  const status = !run
    ? "none"
    : run.status === "done"
    ? "ok"
    : run.status === "running"
    ? "running"
    : "failed";
  const newest = status === "ok" && row.destinationId
    ? (await backupsOf(api, row.destinationId, m).catch(() => []))[0]
    : undefined;
  return {
    schedule: row.cronExpression ?? null,
    keep: row.keepLatestCount ?? null,
    status,
    at: run?.finishedAt ?? run?.startedAt ?? run?.createdAt ?? null,
    sizeBytes: newest?.sizeBytes ?? null,
    key: newest?.key ?? null,
    since: row.createdAt ?? null,
  };
}

/** "ok 3h ago, 12 MiB" and the like, for tables and describe. */
export function describeLastBackup(b: LastBackup | null, now = Date.now()): string {
  if (!b) return "-";
  if (b.status === "none") return `none yet (${b.schedule})`;
  const ago = b.at ? `${agoText(now - Date.parse(b.at))} ago` : "";
  const size = b.sizeBytes !== null ? `, ${formatBytes(b.sizeBytes)}` : "";
  return `${b.status} ${ago}${size}`.trim();
}

function agoText(ms: number): string {
  const m = Math.max(0, Math.floor(ms / 60_000));
  if (m < 1) return "<1m";
  if (m < 60) return `${m}m`;
  if (m < 48 * 60) return `${Math.floor(m / 60)}h`;
  return `${Math.floor(m / 1440)}d`;
}

/** describe's "last backup" line (lib/machine/describe.ts); none for a machine without backups. */
export const lastBackupLine: ExtraLines = async (d, facts) => {
  if (!hasBackupGuard(facts.compose)) return [];
  const last = await lastBackupOf(new BackupApi(d.api.client), {
    machineId: facts.machineId,
    composeId: facts.compose.composeId,
    appName: facts.compose.appName,
    serverId: facts.compose.serverId ?? null,
  });
  if (!last) return [{ label: "last backup", value: "none: no schedule yet (start it once)" }];
  return [{
    label: "last backup",
    value: `${describeLastBackup(last)}${
      last.key ? ` (${last.key})` : ""
    }; schedule "${last.schedule}", keeps ${last.keep ?? "all"}`,
  }];
};
