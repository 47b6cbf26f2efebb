/**
 * `cleanup [--yes] [machine…]`: finds the caller's orphans — machines of mine, made from a
 * DevPod home on this computer, whose folder is gone from it — and stalled machines (folder
 * still there, but no container and no deploy in progress), and shared image caches no
 * machine on their server uses any more, or whose deploy failed. With --yes it deletes
 * them: orphans with their volumes, stalled ones keeping their volumes, those caches with
 * their storage. Machines named on the command line are deleted too (mine only).
 *
 * `--all-owners` (Dokploy owners and admins): every machine, per owner; deletes only the
 * machines named. A dry run by default: deleting is asked for.
 */
import { rememberFolder } from "../lib/backup/folder_record.ts";
import { removeBackupSchedule } from "../lib/backup/register.ts";
import { isFailed, listImageCaches } from "../lib/cache/inventory.ts";
import { serverKey } from "../lib/cache/spec.ts";
import { namedMachines, planCleanup } from "../lib/cleanup/plan.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { findHomes, homeOrigin } from "../lib/devpod_home.ts";
import { ConfigError } from "../lib/errors.ts";
import { isPrivileged } from "../lib/identity/identity.ts";
import { type MachineInfo, machinesIn } from "../lib/machine/inventory.ts";
import { readProjectSnapshot } from "../lib/machine/project.ts";
import { stalledMachines } from "../lib/machine/stalled.ts";

interface Options {
  yes?: boolean;
  allOwners?: boolean;
  args?: (string | string[])[];
}

export async function run(ctx: CommandContext, opts: Options): Promise<number> {
  const names = (opts.args ?? []).flat();
  const { config, api } = dokployFromContext(ctx);
  // A role decides what may be deleted: asked now, not taken from the identity file.
  const me = await api.identity({ fresh: opts.allOwners === true });
  if (opts.allOwners && !isPrivileged(me)) {
    throw new ConfigError(
      `cleanup --all-owners is for Dokploy owners and admins; ${me.email} is a ${me.role}: run cleanup without it for your own machines`,
    );
  }
  if (opts.allOwners && opts.yes && !names.length) {
    throw new ConfigError(
      "cleanup --all-owners --yes deletes only the machines it is given: cleanup --all-owners --yes <machine>…",
    );
  }
  // Without --all-owners the home decides what is an orphan: not found, nothing is deleted.
  const local = opts.allOwners ? null : await findHomes(ctx.env);
  const snapshot = await readProjectSnapshot(api, config.projectName);
  const [machines, caches] = await Promise.all([
    machinesIn(api, snapshot),
    listImageCaches(api, snapshot),
  ]);
  const named = namedMachines(
    opts.allOwners ? machines : machines.filter((m) => m.ownerId === me.userId),
    names,
  );
  if ("problem" in named) throw new ConfigError(named.problem);

  const deleteMachine = async (m: MachineInfo, deleteVolumes: boolean) => {
    // Its backup job would go on failing every night (Dokploy's delete does not stop it);
    // its backups stay in the bucket: cleanup never deletes a backup.
    if (m.backups) {
      await removeBackupSchedule({ api, log: ctx.log, machine: m }, m.composeId)
        .catch((err) => ctx.log.warn(`${m.machineId}: ${(err as Error).message}`));
    }
    await api.deleteCompose(m.composeId, deleteVolumes);
    // Yours: where its backups lie is kept in your DevPod home, so restore finds it and
    // knows it is yours (lib/backup/folder_record.ts). Not for another owner's.
    if (m.backups && local && m.ownerId === me.userId) {
      await rememberFolder(local.homes[0], {
        machineId: m.machineId,
        appName: m.appName,
        dokploy: config.serverUrl,
      }).catch((err) => ctx.log.warn(`${m.machineId}: ${(err as Error).message}`));
    }
    await ctx.stdout(`deleted ${m.machineId} (${m.appName}, owner ${m.owner})\n`);
  };

  if (!local) {
    if (opts.yes) {
      for (const m of named) await deleteMachine(m, !config.keepVolumes);
    } else await listPerOwner(ctx, machines);
    return 0;
  }

  const origins = new Set(await Promise.all(local.homes.map((h) => homeOrigin(h))));
  const plan = planCleanup(machines, me, { machineIds: local.machineIds, origins });
  const orphans = [...plan.orphans, ...named.filter((m) => !plan.orphans.includes(m))];
  const mineKnown = machines.filter((m) =>
    m.ownerId === me.userId && local.machineIds.has(m.machineId)
  );
  const stalled = await stalledMachines(api, mineKnown, local.machineIds);
  const gone = new Set([...orphans].map((m) => m.composeId));
  // A cache stays while any machine we can see, of any owner, lives on its server (a
  // teammate's too); the orphans deleted now do not count.
  const unusedCaches = caches.filter((c) =>
    !machines.some((m) => !gone.has(m.composeId) && m.serverId === c.serverId)
  );
  // A cache whose deploy failed serves no machine made since: it goes too, and the next
  // create on its server makes a new one from the current options (issue 18).
  const failedCaches = caches.filter((c) => isFailed(c) && !unusedCaches.includes(c));
  const removable = [...unusedCaches, ...failedCaches];
  const listedOnly = [...plan.elsewhere, ...plan.unclaimed].filter((m) => !named.includes(m));
  if (!orphans.length && !stalled.length && !removable.length && !listedOnly.length) {
    await ctx.stdout(
      `no orphaned machines of ${me.email} (DevPod homes ${local.homes.join(", ")})\n`,
    );
    return 0;
  }
  for (const m of orphans) {
    if (opts.yes) await deleteMachine(m, !config.keepVolumes);
    else await ctx.stdout(`orphan ${m.machineId} (${m.appName}, ${m.state}, port ${m.sshPort})\n`);
  }
  for (const m of stalled) {
    if (opts.yes) await deleteMachine(m, false);
    else await ctx.stdout(`stalled ${m.machineId} (${m.appName}, ${m.state}, port ${m.sshPort})\n`);
  }
  for (const m of plan.elsewhere.filter((x) => !named.includes(x))) {
    await ctx.stdout(
      `kept ${m.machineId} (${m.appName}, ${m.state}): yours, made from a DevPod home not on this computer; delete it by name: cleanup --yes ${m.appName}\n`,
    );
  }
  for (const m of plan.unclaimed) {
    await ctx.stdout(
      `kept ${m.machineId} (${m.appName}, ${m.state}): no recorded owner; the holder of its keys claims it with 'devpod machine start ${m.machineId}', an owner/admin may remove it: cleanup --all-owners --yes ${m.appName}\n`,
    );
  }
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
    await summarise(ctx, orphans.length, stalled.length, failedCaches.length, unusedCaches.length);
  }
  return 0;
}

/** `--all-owners` without --yes: every machine we can see, grouped by owner. */
async function listPerOwner(ctx: CommandContext, machines: MachineInfo[]): Promise<void> {
  if (!machines.length) {
    await ctx.stdout("no machines\n");
    return;
  }
  const owners = [...new Set(machines.map((m) => m.owner))].sort();
  for (const owner of owners) {
    const theirs = machines.filter((m) => m.owner === owner);
    await ctx.stdout(`${owner}: ${theirs.length} machine(s)\n`);
    for (const m of theirs) {
      await ctx.stdout(`  ${m.machineId} (${m.appName}, ${m.state}, port ${m.sshPort})\n`);
    }
  }
  await ctx.stdout(
    "nothing deleted; delete named machines with: cleanup --all-owners --yes <machine or service name>…\n",
  );
}

async function summarise(
  ctx: CommandContext,
  orphans: number,
  stalled: number,
  failedCaches: number,
  unusedCaches: number,
): Promise<void> {
  if (orphans) {
    await ctx.stdout(
      `${orphans} orphan(s); run again with --yes to delete them and their volumes\n`,
    );
  }
  if (stalled) {
    await ctx.stdout(
      `${stalled} stalled machine(s) (DevPod has their folder, Dokploy has no container and no deploy running); run again with --yes to delete their services, volumes kept\n`,
    );
  }
  if (failedCaches) {
    await ctx.stdout(
      `${failedCaches} image cache(s) whose deploy failed; run again with --yes to delete them (the next machine on that server makes a new one from the current IMAGE_CACHE_IMAGE)\n`,
    );
  }
  if (unusedCaches) {
    await ctx.stdout(
      `${unusedCaches} image cache(s) no machine needs; run again with --yes to delete them, the public images they store and their prebuilds (the next machine on that server makes a new one, and builds again)\n`,
    );
  }
}
