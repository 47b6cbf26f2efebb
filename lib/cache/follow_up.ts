/**
 * What a create does about a failed (or recovered) image cache once its machine is
 * deployed, beside the machine's boot, so the machine never waits for it: record a
 * failure it saw first, retry the cache when the back-off is over, or clear the record
 * of a cache that deploys fine again. Each is one run's job at most once per back-off
 * interval (see ensure.ts for who); the creates in between only read the record.
 *
 * Nothing here throws: the cache's bookkeeping never fails a machine.
 */
import type { ComposeSummary } from "../dokploy/api.ts";
import type { MachineDeps } from "../machine/deps.ts";
import { type CacheFailure, failureAt, FIX_HINT, retryIn, utcMinute } from "./failure.ts";
import { lastDeployOutcome, writeFailure } from "./record.ts";
import { cacheFileFor, serverKey } from "./spec.ts";

export interface CacheRef {
  composeId: string;
  appName: string;
  /** The server it serves (its marker's); null is the Dokploy host. */
  serverId: string | null;
  /** Its compose has the prebuild registry (its marker's token). */
  prebuilds: boolean;
  /** Its compose has the agent cache (its marker's token). */
  agents: boolean;
}

/**
 * Run once the machine is deployed: `machineCache` is the cache the machine ended up
 * with (null: none, or its deploy dropped it), `booted` settles when the machine's boot
 * wait does.
 */
export type AfterDeploy = (machineCache: string | null, booted: Promise<unknown>) => Promise<void>;

/** The machine's service this run made: Dokploy's clock says when. */
export type Made = Pick<ComposeSummary, "composeId" | "createdAt">;

export const NOTHING_AFTER: AfterDeploy = () => Promise.resolve();

export const DEPLOY_TITLE = "devpod: image cache";

/** The one warning of a create that makes its machine without the failed cache. */
export function warnSkipped(
  d: Pick<MachineDeps, "log">,
  cache: CacheRef,
  failure: CacheFailure,
  next: "waits" | "this run" | "under way",
): void {
  const when = next === "this run"
    ? "This create retries it once the machine is deployed"
    : next === "under way"
    ? "It is being deployed again right now"
    : `The first create after ${utcMinute(failure.retryAt)} (${
      retryIn(failure.retryAt)
    }) retries it`;
  d.log.warn(
    `the shared image cache ${cache.appName} of server ${
      serverKey(cache.serverId)
    } failed to deploy (${failure.reason}); this machine pulls images from Docker Hub. ${when}; ${FIX_HINT}`,
  );
}

/**
 * The cache was deployed ahead of the machine (by this run or a parallel one): when the
 * machine's deploy had to drop it, its deploy failed. Recorded with its reason, so the
 * creates after this one skip it at once.
 */
export function recordIfDropped(d: MachineDeps, cache: CacheRef, mine: Made): AfterDeploy {
  return guarded(d, async (machineCache) => {
    if (machineCache !== null) return;
    await recordFirst(d, cache, mine);
  });
}

/** Its last deploy failed and nobody recorded it yet (a run that died, an older provider). */
export function recordFailure(d: MachineDeps, cache: CacheRef, mine: Made): AfterDeploy {
  return async (machineCache, booted) => {
    let warned = false;
    await guarded(d, async () => {
      warned = await recordFirst(d, cache, mine);
    })(machineCache, booted);
    if (warned) return;
    d.log.warn(
      `the shared image cache ${cache.appName} of server ${
        serverKey(cache.serverId)
      } is not deployed (its last deploy failed); this machine pulls images from Docker Hub; ${FIX_HINT}`,
    );
  };
}

/** Records the failure of the cache's last deploy and warns with its reason; false when it did not fail. */
async function recordFirst(d: MachineDeps, cache: CacheRef, mine: Made): Promise<boolean> {
  const outcome = await lastDeployOutcome(d.api, cache.composeId);
  if (outcome.kind !== "failed") return false;
  const failure = failureAt(1, outcome.at, outcome.reason, mine.createdAt);
  await writeFailure(d.api, cache, d.providerVersion, failure);
  warnSkipped(d, cache, failure, "waits");
  return true;
}

/** Recorded as failed, yet it deployed fine since (a retry, or by hand): the record goes. */
export function clearRecord(d: MachineDeps, cache: CacheRef): AfterDeploy {
  return guarded(d, async () => {
    await writeFailure(d.api, cache, d.providerVersion, null);
    d.log.info(`the shared image cache ${cache.appName} deploys fine again; machines use it`);
  });
}

/**
 * The back-off is over and this run's machine is the first made since: deploy the cache
 * again, with the compose file this configuration wants (a corrected IMAGE_CACHE_IMAGE
 * takes effect here), after the machine's deploy, never ahead of it. The record counts
 * the retry as failed until it is seen to work, so a run that dies meanwhile still
 * leaves the next interval in place. Once the machine has booted, one look tells how it
 * went, if it is over; else the next create sees it.
 */
export function retryCache(
  d: MachineDeps,
  cache: CacheRef,
  prior: CacheFailure,
  mine: Made,
): AfterDeploy {
  return guarded(d, async (_machineCache, booted) => {
    const since = mine.createdAt ?? new Date().toISOString();
    const claim = failureAt(prior.attempts + 1, since, prior.reason);
    const file = cacheFileFor(d.config, d.providerVersion);
    // The retry deploys the file these options give: with or without prebuilds.
    cache = { ...cache, prebuilds: d.config.prebuilds, agents: true };
    await writeFailure(d.api, cache, d.providerVersion, claim, file);
    d.log.info(
      `deploying the shared image cache ${cache.appName} again (attempt ${claim.attempts})`,
    );
    await d.api.deployCompose(cache.composeId, DEPLOY_TITLE);
    await booted.catch(() => {});
    const outcome = await lastDeployOutcome(d.api, cache.composeId, since);
    if (outcome.kind === "done") {
      await writeFailure(d.api, cache, d.providerVersion, null);
      d.log.info(`the shared image cache ${cache.appName} deployed fine: the next machines use it`);
    } else if (outcome.kind === "failed") {
      await writeFailure(d.api, cache, d.providerVersion, { ...claim, reason: outcome.reason });
      d.log.info(
        `the shared image cache failed again (${outcome.reason}); next retry after ${
          utcMinute(claim.retryAt)
        }`,
      );
    }
  });
}

function guarded(d: MachineDeps, fn: AfterDeploy): AfterDeploy {
  return async (machineCache, booted) => {
    try {
      await fn(machineCache, booted);
    } catch (err) {
      d.log.info(`could not update the image cache's record (${(err as Error).message})`);
    }
  };
}
