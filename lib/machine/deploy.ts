/**
 * Deploys through Dokploy's queue and waits for *this* deployment to finish.
 * `composeStatus` alone cannot tell an old "done" from the new one, so we watch the
 * deployment list for the row this deploy adds. Deploys are serial per server, so a
 * long wait in the queue is normal: we say so instead of timing out early.
 */
import type { DokployApi } from "../dokploy/api.ts";
import { DeployFailedError, InterruptedError, MachineNotReadyError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { sleep } from "../ssh/ready.ts";

export interface DeployWait {
  api: DokployApi;
  log: Logger;
  deadline: number;
  signal?: AbortSignal;
}

export async function deployAndWait(
  { api, log, deadline, signal }: DeployWait,
  composeId: string,
  title: string,
): Promise<void> {
  const before = new Set((await api.deployments(composeId)).map((d) => d.deploymentId));
  await api.deployCompose(composeId, title);
  const started = Date.now();
  let announced = "";
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new InterruptedError("interrupted while Dokploy was deploying");
    const mine = (await api.deployments(composeId)).find((d) => !before.has(d.deploymentId));
    const phase = mine?.status ?? "queued";
    if (phase !== announced) {
      log.info(
        phase === "queued"
          ? "deploy queued (Dokploy deploys one service at a time per server)"
          : `deploy ${phase} (${((Date.now() - started) / 1000).toFixed(1)}s)`,
      );
      announced = phase;
    }
    if (mine?.status === "done") return;
    if (mine && (mine.status === "error" || mine.status === "cancelled")) {
      const tail = await api.deploymentLog(mine.deploymentId, 15).catch(() => "");
      throw new DeployFailedError(deployFailureMessage(mine.errorMessage, tail));
    }
    // Poll briskly while a short deploy is likely to finish, then back off.
    await sleep(Date.now() - started < 10_000 ? 250 : 1000, signal);
  }
  throw new MachineNotReadyError(
    `Dokploy did not finish deploying the machine in time (last phase: ${announced}); raise READY_TIMEOUT or check the deploy queue in Dokploy`,
  );
}

/** Waits until no deploy of the service runs (or the deadline passes: the caller goes on). */
export async function waitDeployIdle(
  { api, deadline, signal }: Omit<DeployWait, "log">,
  composeId: string,
): Promise<void> {
  while (Date.now() < deadline) {
    const c = await api.composeOne(composeId);
    if (!c || c.composeStatus !== "running") return;
    await sleep(1000, signal);
    if (signal?.aborted) throw new InterruptedError("interrupted while waiting for a deploy");
  }
}

export function deployFailureMessage(
  errorMessage: string | null | undefined,
  logTail: string,
): string {
  const lines = logTail.split("\n").map((l) => l.trim()).filter(Boolean).slice(-6);
  const detail = lines.length ? lines.join(" | ") : errorMessage ?? "no log";
  return `Dokploy failed to deploy the machine: ${detail}`;
}

/** The deploy failed because the published SSH port is held by something else. */
export function isPortTaken(err: unknown): boolean {
  return err instanceof DeployFailedError &&
    /port is already allocated|address already in use/i.test(err.message);
}
