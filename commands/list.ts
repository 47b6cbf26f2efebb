/**
 * `list`: this provider's machines on the Dokploy server and, apart from them, the
 * shared image cache of each server (a table, or --json).
 */
import { allBackups, formatBytes } from "../lib/backup/bucket.ts";
import { describeLastBackup, type LastBackup, lastBackupOf } from "../lib/backup/inventory.ts";
import { backedMachine, backupContext, knownFolders } from "../lib/backup/locate.ts";
import type { ProviderConfig } from "../lib/config.ts";
import type { DokployApi } from "../lib/dokploy/api.ts";
import { BackupApi } from "../lib/dokploy/backups.ts";
import { formatKiB, type ImageCacheInfo, listImageCaches } from "../lib/cache/inventory.ts";
import type { Server } from "../lib/dokploy/api.ts";
import { serverName } from "../lib/servers/directory.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { type MachineInfo, machinesIn } from "../lib/machine/inventory.ts";
import { readProjectSnapshot } from "../lib/machine/project.ts";
import { mine } from "../lib/identity/ownership.ts";
import { backupShown } from "../lib/backup/whose.ts";

export async function run(
  ctx: CommandContext,
  opts: { json?: boolean; backups?: boolean; all?: boolean },
): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  if (opts.backups) return await listBackups(ctx, config, api, opts);
  const [snapshot, me] = await Promise.all([
    readProjectSnapshot(api, config.projectName),
    api.identity(),
  ]);
  // Mine by default; --all: every machine this key may see (a member sees what it was given).
  const shown = opts.all ? snapshot.machines : mine(snapshot.machines, me);
  const hidden = snapshot.machines.length - shown.length;
  const [described, imageCaches, servers] = await Promise.all([
    machinesIn(api, { ...snapshot, machines: shown }),
    listImageCaches(api, snapshot),
    api.servers().catch(() => []),
  ]);
  // Each machine stays on its server for life: shown by name (ids are in --json too).
  const backupApi = new BackupApi(api.client);
  const machines = await Promise.all(described.map(async (m) => ({
    ...m,
    server: serverName(m.serverId, servers),
    backup: m.backups ? await lastBackupOf(backupApi, m).catch(() => null) : null,
  })));
  const others = hidden
    ? `\n${hidden} machine(s) of other owners or none not shown: list --all\n`
    : "";
  await ctx.stdout(
    opts.json
      ? JSON.stringify(
        { user: { email: me.email, role: me.role }, machines, imageCaches },
        null,
        2,
      ) +
        "\n"
      : formatTable(machines, { owners: opts.all === true }) + formatCaches(imageCaches, servers) +
        others,
  );
  return 0;
}

export function formatTable(
  machines: (MachineInfo & { server: string; backup?: LastBackup | null })[],
  { owners = true, now = Date.now() }: { owners?: boolean; now?: number } = {},
): string {
  if (machines.length === 0) return "no machines\n";
  // The column only where some machine is backed up: the table stays narrow otherwise.
  const backups = machines.some((m) => m.backups);
  const previews = machines.some((m) => m.previews?.length);
  return table([
    [
      "MACHINE",
      "STATE",
      "SIZE",
      "SERVER",
      "PORT",
      "AGE",
      ...owners ? ["OWNER"] : [],
      ...backups ? ["LAST BACKUP"] : [],
      ...previews ? ["PREVIEWS"] : [],
    ],
    ...machines.map((m) => [
      m.machineId,
      m.state,
      m.cpus && m.memory ? `${m.cpus} CPU/${m.memory}` : "-",
      m.server,
      String(m.sshPort),
      m.createdAt ? age(now - Date.parse(m.createdAt)) : "-",
      ...owners ? [m.owner] : [],
      ...backups ? [describeLastBackup(m.backup ?? null, now)] : [],
      ...previews
        ? [m.previews?.length ? m.previews.map((p) => String(p.port)).join(", ") : "-"]
        : [],
    ]),
  ]);
}

/** `list --backups`: every backup in BACKUP_DESTINATION, those of deleted machines too. */
async function listBackups(
  ctx: CommandContext,
  config: ProviderConfig,
  api: DokployApi,
  { json = false, all = false }: { json?: boolean; all?: boolean },
): Promise<number> {
  const { backups, destination, snapshot } = await backupContext(config, api);
  const known = await knownFolders(snapshot, config, ctx.env);
  const [files, me] = await Promise.all([
    allBackups(backups, destination.destinationId, known),
    api.identity(),
  ]);
  // Yours: your live machines', and those of deleted machines a DevPod home here recorded
  // deleting. An owner/admin's --all: every backup in the bucket.
  const rows = files.flatMap((f) => {
    const live = backedMachine(snapshot, f.machineId, me);
    return backupShown(f.key, live, known, me, all)
      ? [{ ...f, machine: live ? "live" : "deleted" }]
      : [];
  });
  if (json) {
    await ctx.stdout(
      JSON.stringify({ destination: destination.name, backups: rows }, null, 2) + "\n",
    );
    return 0;
  }
  await ctx.stdout(
    rows.length === 0 ? `no backups in ${destination.name}\n` : table([
      ["MACHINE", "TAKEN", "SIZE", "MACHINE NOW", "KEY"],
      ...rows.map((r) => [
        r.machineId,
        r.takenAt ?? "-",
        r.complete ? formatBytes(r.sizeBytes) : "empty (failed run)",
        r.machine,
        r.key,
      ]),
    ]),
  );
  return 0;
}

/** Below the machines, after a blank line; nothing when no server has a cache. */
export function formatCaches(caches: ImageCacheInfo[], servers: Server[]): string {
  if (caches.length === 0) return "";
  return "\n" + table([
    ["IMAGE CACHE", "STATE", "STORED", "PREBUILDS", "AGENTS", "SERVER", "MACHINES"],
    ...caches.map((c) => [
      c.appName,
      c.state,
      c.sizeKiB === null ? "-" : formatKiB(c.sizeKiB),
      !c.prebuilds ? "none" : c.prebuilds.sizeKiB === null ? "-" : formatKiB(c.prebuilds.sizeKiB),
      !c.agents ? "none" : c.agents.running ? String(c.agents.stored.length) : "-",
      serverName(c.serverId, servers),
      String(c.machines),
    ]),
  ]);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n") +
    "\n";
}

function age(ms: number): string {
  const m = Math.max(0, Math.floor(ms / 60_000));
  if (m < 60) return `${m}m`;
  if (m < 48 * 60) return `${Math.floor(m / 60)}h`;
  return `${Math.floor(m / 1440)}d`;
}
