/**
 * Deploys through Dokploy's queue and waits for *this* deployment to finish.
 * `composeStatus` alone cannot tell an old "done" from the new one, so we watch the
 * deployment list for the row this deploy adds. Deploys are serial per server, so a
 * long wait in the queue is normal: we say so instead of timing out early.
 */
import type { Compose, Deployment, DokployApi } from "../dokploy/api.ts";
import { DeployFailedError, InterruptedError, MachineNotReadyError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { sleep } from "../ssh/ready.ts";
import { lostInOutage } from "./lost_deploy.ts";

/** When the first look at a new deploy is worth its call. */
const FIRST_POLL_MS = 250;

export interface DeployWait {
  api: DokployApi;
  log: Logger;
  deadline: number;
  signal?: AbortSignal;
}

/**
 * Deploys and waits for the deployment row this deploy adds: the first not in `seen`,
 * the ids of the service's deployments before it (known from compose.one, or none for a
 * service this run created: no call needed). The new row joins `seen`, so a retry
 * waits for its own.
 */
export async function deployAndWait(
  { api, log, deadline, signal }: DeployWait,
  composeId: string,
  title: string,
  seen: Set<string>,
): Promise<void> {
  const before = new Set(seen);
  await api.deployCompose(composeId, title);
  const started = Date.now();
  // No deploy finishes this fast, and Dokploy adds the row only once the job starts:
  // a poll at once would only read "queued".
  await sleep(FIRST_POLL_MS, signal);
  let announced = "";
  // Outages seen so far; one more means Dokploy may have restarted and lost this deploy.
  let outagesJudged = outagesOf(api);
  let redeployed = false;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new InterruptedError("interrupted while Dokploy was deploying");
    const mine = (await api.deployments(composeId)).find((d) => !before.has(d.deploymentId));
    if (!redeployed && outagesOf(api) > outagesJudged) {
      outagesJudged = outagesOf(api);
      if (await lostInOutage(api, mine, { signal })) {
        // Redeployed once: a second loss is for the user (READY_TIMEOUT) to see.
        redeployed = true;
        log.warn("Dokploy was down during the deploy and lost it; deploying again");
        if (mine) {
          // The lost row stays `running` forever: never wait for it again, nor on a retry.
          before.add(mine.deploymentId);
          seen.add(mine.deploymentId);
        }
        await api.deployCompose(composeId, title);
        continue;
      }
    }
    const phase = mine?.status ?? "queued";
    if (phase !== announced) {
      log.info(
        phase === "queued"
          ? "deploy queued (Dokploy deploys one service at a time per server)"
          : `deploy ${phase} (${((Date.now() - started) / 1000).toFixed(1)}s)`,
      );
      announced = phase;
    }
    if (mine) seen.add(mine.deploymentId);
    if (mine?.status === "done") return;
    if (mine && (mine.status === "error" || mine.status === "cancelled")) {
      const tail = await api.deploymentLog(mine.deploymentId, 15).catch(() => "");
      throw new DeployFailedError(deployFailureMessage(mine.errorMessage, tail));
    }
    // Poll briskly while a short deploy is likely to finish, then back off.
    await sleep(Date.now() - started < 10_000 ? 250 : 1000, signal);
  }
  throw new MachineNotReadyError(
    `Dokploy did not finish deploying the machine in time (last phase: ${
      lastPhase(announced)
    }); raise READY_TIMEOUT or check the deploy queue in Dokploy`,
  );
}

/** How many outages the API client rode out (0 for API fakes without a client). */
function outagesOf(api: DokployApi): number {
  return api.client?.outages ?? 0;
}

/** The phase for the timeout message; none seen means no deployment row ever appeared. */
export function lastPhase(announced: string): string {
  return announced && announced !== "queued"
    ? announced
    : "queued, Dokploy never started it (a Dokploy restart loses its queue: run 'devpod up' again)";
}

/**
 * Waits until no deploy of the service runs (or the deadline passes: the caller goes on);
 * the service's row as last read (null when it is gone).
 */
export async function waitDeployIdle(
  { api, deadline, signal }: Omit<DeployWait, "log">,
  compose: Compose,
): Promise<Compose | null> {
  let last: Compose | null = compose;
  while (last && last.composeStatus === "running" && Date.now() < deadline) {
    await sleep(1000, signal);
    if (signal?.aborted) throw new InterruptedError("interrupted while waiting for a deploy");
    last = await api.composeOne(compose.composeId);
  }
  return last;
}

/**
 * The service's deployments, newest first: from its compose.one row, which carries them
 * (in no promised order), else asked for.
 */
export async function deploymentsOf(
  api: DokployApi,
  compose: { composeId: string; deployments?: Deployment[] | null },
): Promise<Deployment[]> {
  const all = compose.deployments ?? await api.deployments(compose.composeId);
  return all.toSorted((a, b) => String(b.createdAt ?? "").localeCompare(String(a.createdAt ?? "")));
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
