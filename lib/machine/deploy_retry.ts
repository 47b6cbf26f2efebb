/**
 * Deploying a machine until Docker accepts it. Some refusals are ours to fix: the SSH
 * port is held by something outside our project (create moves to another port), the
 * CPU limit is above the server's CPU count (capped, and remembered), or the image
 * cache's network is gone (the machine goes on without the cache). One loop handles
 * every such cause; anything else fails the deploy as before.
 */
import { dropImageCacheFor } from "../cache/fallback.ts";
import { DeployFailedError } from "../errors.ts";
import { nameOf, serverUnreachable, unreachableReason } from "../servers/unreachable.ts";
import { planCpuCap, serverCpusFromError } from "./cpu_cap.ts";
import { deployAndWait, isPortTaken } from "./deploy.ts";
import type { MachineDeps } from "./deps.ts";
import { PORT_ATTEMPTS, type ReadClaims, untriedPort } from "./port_race.ts";
import { publishSpec } from "./spec.ts";
import type { MachineState } from "./state.ts";

export interface DeployPlan {
  /** Deployment title shown in Dokploy. */
  title: string;
  /** Ids of the service's deployments so far (see deployAndWait). */
  deployments: Iterable<string>;
  /**
   * Given, a taken port moves to one no machine of ours claims (create only: start keeps
   * its port).
   */
  readClaims?: ReadClaims;
}

/** Port moves, one CPU cap and one cache drop: each fix is needed at most that often. */
const MAX_DEPLOYS = PORT_ATTEMPTS + 2;

/** Deploys; on a refusal we can fix, updates the spec (state.json and Dokploy) and deploys again. */
export async function deployMachine(
  d: MachineDeps,
  state: MachineState,
  authorizedKey: string,
  deadline: number,
  plan: DeployPlan,
): Promise<void> {
  const triedPorts = new Set<number>([state.sshPort]);
  const seen = new Set(plan.deployments);
  for (let attempt = 1;; attempt++) {
    try {
      await deployAndWait({ ...d, deadline }, state.composeId, plan.title, seen);
      return;
    } catch (err) {
      // Dokploy could not SSH to the server (the deploy's errorMessage says so, no log).
      const unreachable = state.serverId === null ? null : unreachableReason(err);
      if (unreachable) {
        throw serverUnreachable(await nameOf(d.api, state.serverId!), unreachable, "not deployed");
      }
      if (attempt >= MAX_DEPLOYS || !(await fixSpecFor(err, d, state, plan, triedPorts))) {
        throw err;
      }
      await publishSpec(d, state, authorizedKey);
    }
  }
}

/** Changes `state` so the next deploy avoids `err`; false when no change of ours helps. */
async function fixSpecFor(
  err: unknown,
  d: MachineDeps,
  state: MachineState,
  plan: DeployPlan,
  triedPorts: Set<number>,
): Promise<boolean> {
  if (!(err instanceof DeployFailedError)) return false;
  if (dropImageCacheFor(err, d, state)) return true;
  const serverCpus = serverCpusFromError(err.message);
  if (serverCpus !== null) {
    const cap = planCpuCap(d.config, state.cpuLimit, serverCpus);
    if (!cap) return false;
    d.log.warn(cap.warning);
    state.cpuLimit = cap.cpuLimit;
    return true;
  }
  if (plan.readClaims && isPortTaken(err)) {
    state.sshPort = await untriedPort(d, triedPorts, plan.readClaims);
    d.log.info(`port taken on the server; retrying on ${state.sshPort}`);
    return true;
  }
  return false;
}
