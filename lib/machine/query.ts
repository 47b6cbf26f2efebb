/** `status` as a query: at most two API calls when the state file is present. */
import { DeployFailedError } from "../errors.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine } from "./locate.ts";
import { type MachineStatus, mapStatus } from "./status.ts";

export async function machineStatus(d: MachineDeps): Promise<MachineStatus> {
  const found = await locateMachine(d);
  const compose = found.compose;
  const containers = compose && compose.composeStatus !== "running"
    ? await d.api.containers(compose.appName, compose.serverId ?? null)
    : [];
  const verdict = mapStatus(compose, containers);
  if ("status" in verdict) return verdict.status;
  const last = (await d.api.deployments(compose!.composeId))[0];
  const tail = last ? await d.api.deploymentLog(last.deploymentId, 10).catch(() => "") : "";
  throw new DeployFailedError(
    `the machine's last deploy failed in Dokploy: ${
      tail.split("\n").filter(Boolean).slice(-4).join(" | ") || last?.errorMessage || "no log"
    }; run 'devpod up' again to retry`,
  );
}
