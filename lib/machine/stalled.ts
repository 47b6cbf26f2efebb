/**
 * Stalled machines: DevPod still has the machine folder, but its Dokploy service has
 * no container and no deploy in progress (a lost one counts as none) — e.g. what a
 * create rollback that could not reach Dokploy left behind. `cleanup` lists them apart
 * from orphans: DevPod may still start them, so they are only candidates.
 */
import type { DokployApi } from "../dokploy/api.ts";
import { deploymentsOf } from "./deploy.ts";
import type { MachineInfo } from "./inventory.ts";
import { isLostDeploy, LOST_DEPLOY_AGE_MS } from "./lost_deploy.ts";

/** `machines` known to DevPod that have stalled; young services are left out (a create may be under way). */
export async function stalledMachines(
  api: DokployApi,
  machines: MachineInfo[],
  known: ReadonlySet<string>,
  { now = Date.now(), gapMs }: { now?: number; gapMs?: number } = {},
): Promise<MachineInfo[]> {
  const candidates = machines.filter((m) =>
    known.has(m.machineId) && m.containers === 0 &&
    now - Date.parse(m.createdAt ?? "") > LOST_DEPLOY_AGE_MS
  );
  const verdicts = await Promise.all(candidates.map(async (m) => {
    if (m.composeStatus !== "running") return true;
    const newest = (await deploymentsOf(api, { composeId: m.composeId }))[0];
    return await isLostDeploy(api, m, newest, { now, gapMs });
  }));
  return candidates.filter((_, i) => verdicts[i]);
}
