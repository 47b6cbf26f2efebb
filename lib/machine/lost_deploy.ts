/**
 * Dokploy's deploy queue lives in memory: a restart (upgrade, reboot) drops queued and
 * running deploys, but their rows stay `running` forever, and so does the service's
 * composeStatus. Such a deploy is lost when every signal agrees:
 *
 * - it is older than LOST_DEPLOY_AGE_MS — a live deploy is much younger;
 * - its log does not grow across two reads LOG_STILL_GAP_MS apart — a live deploy
 *   writes while it works.
 * A container says nothing either way: `docker compose up` may have finished before
 * Dokploy died (the machine runs, the row says `running` for ever), and an old one keeps
 * running while a redeploy that never started waits in a lost queue.
 */
import type { ComposeSummary, Deployment, DokployApi } from "../dokploy/api.ts";
import { sleep } from "../ssh/ready.ts";

/**
 * A machine deploy is `docker compose up` of one service: seconds with a cached image, a
 * minute or two for a first pull of the machine image over a slow link — and a live pull
 * keeps writing progress to the log, which the stall test below reads. Until a deploy
 * reads as lost, `status` says Busy and DevPod polls it with no end, so the threshold is
 * what a user waits after a Dokploy restart: short enough to be bearable, and a wrong
 * verdict costs only one extra deploy of the same spec.
 */
export const LOST_DEPLOY_AGE_MS = 3 * 60_000;

/** Long enough for a live deploy (pull progress, compose output) to write a line. */
export const LOG_STILL_GAP_MS = 4_000;

export interface LostDeployOptions {
  now?: number;
  gapMs?: number;
  signal?: AbortSignal;
}

/**
 * The cheap test, from what a status read already has: a `running` service whose newest
 * deployment is `running` and old. Only then is it worth reading logs.
 */
export function maybeLost(
  compose: Pick<ComposeSummary, "composeStatus">,
  newest: Deployment | undefined,
  now = Date.now(),
): newest is Deployment {
  if (compose.composeStatus !== "running" || newest?.status !== "running") return false;
  const started = Date.parse(newest.createdAt ?? "");
  return Number.isFinite(started) && now - started > LOST_DEPLOY_AGE_MS;
}

/** True when the newest deploy of `compose` is lost (see above); false on any doubt. */
export async function isLostDeploy(
  api: DokployApi,
  compose: Pick<ComposeSummary, "composeStatus">,
  newest: Deployment | undefined,
  opts: LostDeployOptions = {},
): Promise<boolean> {
  return maybeLost(compose, newest, opts.now) && await logStandsStill(api, newest, opts);
}

/**
 * Our own deploy after Dokploy was unreachable while we waited for it: a restart empties
 * the queue, so a deploy with no row yet is gone, and a `running` one whose log stands
 * still is too. No age test here: the outage is the evidence. At worst (a mere network
 * blip) the caller queues one extra deploy of the same spec.
 */
export async function lostInOutage(
  api: DokployApi,
  mine: Deployment | undefined,
  opts: Omit<LostDeployOptions, "now"> = {},
): Promise<boolean> {
  if (!mine) return true;
  return mine.status === "running" && await logStandsStill(api, mine, opts);
}

/** The deploy's log tail is the same across LOG_STILL_GAP_MS: nothing is working on it. */
async function logStandsStill(
  api: DokployApi,
  deploy: Deployment,
  opts: Omit<LostDeployOptions, "now">,
): Promise<boolean> {
  try {
    const before = await api.deploymentLog(deploy.deploymentId, 20);
    await sleep(opts.gapMs ?? LOG_STILL_GAP_MS, opts.signal);
    return (await api.deploymentLog(deploy.deploymentId, 20)) === before;
  } catch {
    // Cannot tell (Dokploy still flaky): a deploy we cannot judge is not declared lost.
    return false;
  }
}
