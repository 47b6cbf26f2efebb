/**
 * `cleanup`: finds orphans — Dokploy services marked as this provider's machines
 * whose DevPod machine folder no longer exists — and, separately, stalled machines
 * (folder still there, but no container and no deploy in progress). With --yes it
 * deletes both: orphans with their volumes, stalled ones keeping their volumes, since
 * DevPod still knows them. A dry run by default: deleting is asked for.
 */
import type { CommandContext } from "../lib/context.ts";
import { dokployFromContext } from "../lib/dokploy_context.ts";
import { devpodHome, localMachineIds } from "../lib/devpod_home.ts";
import { listMachines, type MachineInfo } from "../lib/machine/inventory.ts";
import { stalledMachines } from "../lib/machine/stalled.ts";

export async function run(ctx: CommandContext, opts: { yes?: boolean }): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  const home = devpodHome(ctx.env);
  const known = await localMachineIds(home);
  const machines = await listMachines(api, config);
  const orphans = machines.filter((m) => !known.has(m.machineId));
  const stalled = await stalledMachines(api, machines, known);
  if (orphans.length === 0 && stalled.length === 0) {
    await ctx.stdout(`no orphaned machines (DevPod home ${home})\n`);
    return 0;
  }
  const act = async (m: MachineInfo, label: string, deleteVolumes: boolean) => {
    if (opts.yes) {
      await api.deleteCompose(m.composeId, deleteVolumes);
      await ctx.stdout(`deleted ${m.machineId} (${m.appName})\n`);
    } else {
      await ctx.stdout(`${label} ${m.machineId} (${m.appName}, ${m.state}, port ${m.sshPort})\n`);
    }
  };
  for (const m of orphans) await act(m, "orphan", !config.keepVolumes);
  for (const m of stalled) await act(m, "stalled", false);
  if (!opts.yes) {
    if (orphans.length) {
      await ctx.stdout(
        `${orphans.length} orphan(s); run again with --yes to delete them and their volumes\n`,
      );
    }
    if (stalled.length) {
      await ctx.stdout(
        `${stalled.length} stalled machine(s) (DevPod has their folder, Dokploy has no container and no deploy running); run again with --yes to delete their services, volumes kept\n`,
      );
    }
  }
  return 0;
}
