/**
 * `status` as a query: two API calls with the state file (compose.one, containers),
 * three without it (the project walk finds the service by marker).
 */
import { DeployFailedError } from "../errors.ts";
import { deploymentsOf } from "./deploy.ts";
import type { MachineDeps } from "./deps.ts";
import { locateListed } from "./locate.ts";
import { type MachineStatus, mapStatus } from "./status.ts";

export async function machineStatus(d: MachineDeps): Promise<MachineStatus> {
  const { compose } = await locateListed(d);
  const containers = compose && compose.composeStatus !== "running"
    ? await d.api.containers(compose.appName, compose.serverId ?? null)
    : [];
  const verdict = mapStatus(compose, containers);
  if ("status" in verdict) return verdict.status;
  const last = (await deploymentsOf(d.api, compose!))[0];
  const tail = last ? await d.api.deploymentLog(last.deploymentId, 10).catch(() => "") : "";
  throw new DeployFailedError(
    `the machine's last deploy failed in Dokploy: ${
      tail.split("\n").filter(Boolean).slice(-4).join(" | ") || last?.errorMessage || "no log"
    }; run 'devpod up' again to retry`,
  );
}
