/**
 * `status` as a query: two API calls with the state file (compose.one, containers),
 * three without it (the project walk finds the service by marker). Only a deploy that
 * has been `running` for longer than a live one ever does costs more: the lost-deploy
 * check (lost_deploy.ts), after which a lost deploy reads as what its containers say —
 * Running, or Stopped so DevPod runs `start` — instead of Busy for ever. An empty
 * container list of a deployed machine is checked before it reads Stopped
 * (no_containers.ts).
 */
import type { ComposeSummary, Deployment } from "../dokploy/api.ts";
import { DeployFailedError } from "../errors.ts";
import { assertNoHostKeyRefusal } from "../ssh/host_key_refusal.ts";
import { deploymentsOf } from "./deploy.ts";
import type { MachineDeps } from "./deps.ts";
import { type Located, locateListed } from "./locate.ts";
import { statusWithoutContainers } from "./no_containers.ts";
import { isLostDeploy, maybeLost } from "./lost_deploy.ts";
import { machineContainers, type MachineStatus, mapStatus } from "./status.ts";

/**
 * What `status` answers (and `describe` shows): a host-key refusal `command` recorded
 * that still holds fails it first; then the machine's state in Dokploy. `located` is
 * the machine when the caller has already found it.
 */
export async function answerStatus(
  d: MachineDeps,
  located?: Located<ComposeSummary>,
): Promise<MachineStatus> {
  await assertNoHostKeyRefusal(d.machine);
  return await machineStatus(d, located);
}

export async function machineStatus(
  d: MachineDeps,
  located?: Located<ComposeSummary>,
): Promise<MachineStatus> {
  const { compose, state } = located ?? await locateListed(d);
  // A lost deploy is no deploy in progress: the containers say what the machine is.
  const deploying = compose?.composeStatus === "running" && !await newestDeployIsLost(d, compose);
  const containers = compose && !deploying
    ? await d.api.containers(compose.appName, compose.serverId ?? null)
    : [];
  // On a remote server "error" too: Dokploy marks a service so when a stop could not
  // reach it.
  const settled = compose?.composeStatus === "done" ||
    (compose?.composeStatus === "error" && compose.serverId != null);
  if (settled && !deploying && machineContainers(containers).length === 0) {
    const answered = await statusWithoutContainers(d, compose, state);
    if (answered) return answered;
  }
  const lost = compose?.composeStatus === "running" && !deploying;
  const verdict = mapStatus(lost ? { composeStatus: "idle" } : compose, containers);
  if ("status" in verdict) return verdict.status;
  const last = (await deploymentsOf(d.api, compose!))[0];
  const tail = last ? await d.api.deploymentLog(last.deploymentId, 10).catch(() => "") : "";
  throw new DeployFailedError(
    `the machine's last deploy failed in Dokploy: ${
      tail.split("\n").filter(Boolean).slice(-4).join(" | ") || last?.errorMessage || "no log"
    }; run 'devpod up' again to retry`,
  );
}

/** Deployments come with the compose.one row (state.json path); by marker they cost a call. */
async function newestDeployIsLost(
  d: MachineDeps,
  compose: ComposeSummary & { deployments?: Deployment[] | null },
): Promise<boolean> {
  // Without state.json the row has no deployments: read them only if the age could tell.
  const newest = (await deploymentsOf(d.api, compose))[0];
  return maybeLost(compose, newest) &&
    await isLostDeploy(d.api, compose, newest, { signal: d.signal });
}
