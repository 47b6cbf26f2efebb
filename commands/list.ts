/** `list`: this provider's machines on the Dokploy server (a table, or --json). */
import type { CommandContext } from "../lib/context.ts";
import { dokployFromContext } from "../lib/dokploy_context.ts";
import { listMachines, type MachineInfo } from "../lib/machine/inventory.ts";

export async function run(ctx: CommandContext, opts: { json?: boolean }): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  const machines = await listMachines(api, config);
  await ctx.stdout(opts.json ? JSON.stringify(machines, null, 2) + "\n" : formatTable(machines));
  return 0;
}

export function formatTable(machines: MachineInfo[], now = Date.now()): string {
  if (machines.length === 0) return "no machines\n";
  const rows = [
    ["MACHINE", "STATE", "SIZE", "SERVER", "PORT", "AGE", "OWNER"],
    ...machines.map((m) => [
      m.machineId,
      m.state,
      m.cpus && m.memory ? `${m.cpus} CPU/${m.memory}` : "-",
      m.serverId ?? "local",
      String(m.sshPort),
      m.createdAt ? age(now - Date.parse(m.createdAt)) : "-",
      m.owner ?? "-",
    ]),
  ];
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
