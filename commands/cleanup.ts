/**
 * `cleanup`: finds orphans — Dokploy services marked as this provider's machines
 * whose DevPod machine folder no longer exists — and, separately, stalled machines
 * (folder still there, but no container and no deploy in progress), and shared image
 * caches no machine on their server needs any more, or whose deploy failed. With --yes
 * it deletes them: orphans with their volumes, stalled ones keeping their volumes, since
 * DevPod still knows them, those caches with their storage (public images, fetched again
 * on demand). A dry run by default: deleting is asked for.
 */
import { removeBackupSchedule } from "../lib/backup/register.ts";
import { isFailed, listImageCaches } from "../lib/cache/inventory.ts";
import { serverKey } from "../lib/cache/spec.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { devpodHome, localMachineIds } from "../lib/devpod_home.ts";
import { type MachineInfo, machinesIn } from "../lib/machine/inventory.ts";
import { readProjectSnapshot } from "../lib/machine/project.ts";
import { stalledMachines } from "../lib/machine/stalled.ts";

export async function run(ctx: CommandContext, opts: { yes?: boolean }): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  const home = devpodHome(ctx.env);
  const known = await localMachineIds(home);
  const snapshot = await readProjectSnapshot(api, config.projectName);
  const [machines, caches] = await Promise.all([
    machinesIn(api, snapshot),
    listImageCaches(api, snapshot),
  ]);
  const orphans = machines.filter((m) => !known.has(m.machineId));
  const stalled = await stalledMachines(api, machines, known);
  // A cache is kept while a machine DevPod knows lives on its server (stalled ones too:
  // they come back); orphans deleted now do not count.
  const unusedCaches = caches.filter((c) =>
    !machines.some((m) => known.has(m.machineId) && m.serverId === c.serverId)
  );
  // A cache whose deploy failed serves no machine made since: it goes too, and the next
  // create on its server makes a new one from the current options (issue 18).
  const failedCaches = caches.filter((c) => isFailed(c) && !unusedCaches.includes(c));
  const removable = [...unusedCaches, ...failedCaches];
  if (orphans.length === 0 && stalled.length === 0 && removable.length === 0) {
    await ctx.stdout(`no orphaned machines (DevPod home ${home})\n`);
    return 0;
  }
  const act = async (m: MachineInfo, label: string, deleteVolumes: boolean) => {
    if (opts.yes) {
      // Its backup job would go on failing every night (Dokploy's delete does not stop it);
      // its backups stay in the bucket: cleanup never deletes a backup.
      if (m.backups) {
        await removeBackupSchedule({ api, log: ctx.log, machine: m }, m.composeId)
          .catch((err) => ctx.log.warn(`${m.machineId}: ${(err as Error).message}`));
      }
      await api.deleteCompose(m.composeId, deleteVolumes);
      await ctx.stdout(`deleted ${m.machineId} (${m.appName})\n`);
    } else {
      await ctx.stdout(`${label} ${m.machineId} (${m.appName}, ${m.state}, port ${m.sshPort})\n`);
    }
  };
  for (const m of orphans) await act(m, "orphan", !config.keepVolumes);
  for (const m of stalled) await act(m, "stalled", false);
  for (const c of removable) {
    if (opts.yes) {
      await api.deleteCompose(c.composeId, true);
      const also = c.prebuilds ? " and its prebuild registry" : "";
      await ctx.stdout(
        `deleted image cache ${c.appName}${also} (server ${serverKey(c.serverId)})\n`,
      );
    } else if (failedCaches.includes(c)) {
      const why = c.failure ? `: ${c.failure.reason}` : "";
      await ctx.stdout(
        `failed image cache ${c.appName} (server ${serverKey(c.serverId)}, ${c.state}${why})\n`,
      );
    } else {
      await ctx.stdout(
        `unused image cache ${c.appName} (server ${serverKey(c.serverId)}, ${c.state})\n`,
      );
    }
  }
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
    if (failedCaches.length) {
      await ctx.stdout(
        `${failedCaches.length} image cache(s) whose deploy failed; run again with --yes to delete them (the next machine on that server makes a new one from the current IMAGE_CACHE_IMAGE)\n`,
      );
    }
    if (unusedCaches.length) {
      await ctx.stdout(
        `${unusedCaches.length} image cache(s) no machine needs; run again with --yes to delete them, the public images they store and their prebuilds (the next machine on that server makes a new one, and builds again)\n`,
      );
    }
  }
  return 0;
}
