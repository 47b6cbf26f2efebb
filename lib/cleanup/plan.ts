/**
 * What `cleanup` may delete, decided without I/O. Only the caller's machines are ever
 * candidates: an orphan is a machine of mine, made from a DevPod home on this computer,
 * whose folder is in none of them. Mine made from another home (a second laptop) and
 * machines without a recorded owner are only listed: they are deleted when named.
 */
import type { Identity } from "../identity/identity.ts";
import type { MachineInfo } from "../machine/inventory.ts";

export interface CleanupPlan {
  /** Mine, from a home here, with no folder in it: deleted with --yes (volumes too). */
  orphans: MachineInfo[];
  /** Mine, made from a DevPod home that is not on this computer: named to be deleted. */
  elsewhere: MachineInfo[];
  /** Without a recorded owner: its key holder claims it, an owner/admin may delete it by name. */
  unclaimed: MachineInfo[];
}

export function planCleanup(
  machines: readonly MachineInfo[],
  me: Identity,
  local: { machineIds: ReadonlySet<string>; origins: ReadonlySet<string> },
): CleanupPlan {
  const plan: CleanupPlan = { orphans: [], elsewhere: [], unclaimed: [] };
  for (const m of machines) {
    if (local.machineIds.has(m.machineId) && m.ownerId !== null) continue;
    if (m.ownerId === null) {
      if (!local.machineIds.has(m.machineId)) plan.unclaimed.push(m);
    } else if (m.ownerId === me.userId) {
      if (m.origin !== null && local.origins.has(m.origin)) plan.orphans.push(m);
      else plan.elsewhere.push(m);
    }
  }
  return plan;
}

/**
 * The machines named on the command line: by DevPod id when that names one machine, or by
 * its Dokploy appName (unique). A name that matches none, or several, fails in one line.
 */
export function namedMachines(
  machines: readonly MachineInfo[],
  names: readonly string[],
): MachineInfo[] | { problem: string } {
  const out: MachineInfo[] = [];
  for (const name of names) {
    const byApp = machines.filter((m) => m.appName === name);
    const matches = byApp.length ? byApp : machines.filter((m) => m.machineId === name);
    if (matches.length === 0) {
      return { problem: `no machine named ${name} (list --all shows every machine you can see)` };
    }
    if (matches.length > 1) {
      return {
        problem: `${name} names ${matches.length} machines (${
          matches.map((m) => `${m.appName} of ${m.owner}`).join(", ")
        }); name one by its service name`,
      };
    }
    if (!out.includes(matches[0])) out.push(matches[0]);
  }
  return out;
}
