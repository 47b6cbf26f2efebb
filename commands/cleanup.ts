/**
 * `cleanup`: finds orphans — Dokploy services marked as this provider's machines
 * whose DevPod machine folder no longer exists — and, with --yes, deletes them.
 * A dry run by default: deleting is the one destructive act, so it is asked for.
 */
import type { CommandContext } from "../lib/context.ts";
import { dokployFromContext } from "../lib/dokploy_context.ts";
import { devpodHome, localMachineIds } from "../lib/devpod_home.ts";
import { listMachines } from "../lib/machine/inventory.ts";

export async function run(ctx: CommandContext, opts: { yes?: boolean }): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  const home = devpodHome(ctx.env);
  const known = await localMachineIds(home);
  const orphans = (await listMachines(api, config)).filter((m) => !known.has(m.machineId));
  if (orphans.length === 0) {
    await ctx.stdout(`no orphaned machines (DevPod home ${home})\n`);
    return 0;
  }
  for (const m of orphans) {
    if (opts.yes) {
      await api.deleteCompose(m.composeId, !config.keepVolumes);
      await ctx.stdout(`deleted ${m.machineId} (${m.appName})\n`);
    } else {
      await ctx.stdout(`orphan ${m.machineId} (${m.appName}, ${m.state}, port ${m.sshPort})\n`);
    }
  }
  if (!opts.yes) {
    await ctx.stdout(
      `${orphans.length} orphan(s); run again with --yes to delete them and their volumes\n`,
    );
  }
  return 0;
}
