/**
 * Making sure the machine's server runs the shared image cache before the machine is
 * deployed. It is found by its marker in the project snapshot the create already read, so
 * every create after the first on a server costs no extra call. The first create makes
 * it (two calls: create and deploy) and queues its deploy ahead of the machine's: Dokploy
 * runs one deploy at a time per server, so the cache's network exists when the
 * machine's deploy starts.
 *
 * A cache whose deploy failed (issue 18) is recorded as such in its description, with
 * the reason and when to retry (failure.ts). Until then every create makes its machine
 * without it at once: no deploy queued, no mirror, one warning. After it, the create
 * whose machine Dokploy made first since the retry time retries it, after its own
 * machine's deploy (follow_up.ts); parallel creates tell who that is from the project
 * re-read of their port check, so exactly one does.
 *
 * Nothing here may break a machine: when the cache cannot be had, the machine is made
 * without it and its dockerd pulls from Docker Hub as before.
 */
import type { Compose, ComposeSummary } from "../dokploy/api.ts";
import type { MachineDeps } from "../machine/deps.ts";
import { byAge, type MarkedCache, type ProjectSnapshot } from "../machine/project.ts";
import type { CacheFailure } from "./failure.ts";
import {
  type AfterDeploy,
  type CacheRef,
  clearRecord,
  DEPLOY_TITLE,
  type Made,
  NOTHING_AFTER,
  recordFailure,
  recordIfDropped,
  retryCache,
  warnSkipped,
} from "./follow_up.ts";
import { writeFailure } from "./record.ts";
import { CACHE_NAME, cacheFileFor, describeCache, serverKey } from "./spec.ts";

/** Whether machines of this configuration use a cache (only a nested dockerd pulls). */
export function wantsImageCache(d: Pick<MachineDeps, "config">): boolean {
  return d.config.imageCache && d.config.dockerMode === "dind";
}

/**
 * Whether machines of this configuration get the prebuild registry, which lives in the
 * image cache's compose (lib/prebuild/spec.ts): PREBUILDS needs IMAGE_CACHE.
 */
export function wantsPrebuilds(d: Pick<MachineDeps, "config">): boolean {
  return wantsImageCache(d) && d.config.prebuilds;
}

/** The caches serving this server, oldest (the one everybody uses) first. */
export function cachesOn(snapshot: ProjectSnapshot, serverId: string | null): MarkedCache[] {
  return snapshot.caches.filter((c) => c.serverId === serverId);
}

/** The cache a new machine is made with, before the create re-reads the project. */
export interface CachePlan {
  /** The server the machine goes to (null: the Dokploy host). */
  serverId: string | null;
  /** The cache's appName; null: none (off, failed, or it cannot be had now). */
  appName: string | null;
  /** The machine uses the cache's prebuild registry (it has one, or gets one ahead of it). */
  prebuilds: boolean;
  /** The cache this run just made, not deployed yet: settleImageCache decides its fate. */
  made?: Compose;
  /** The server's cache, when more than its name matters to settleImageCache. */
  seen?: {
    cache: CacheRef;
    /**
     * failed: its last deploy failed (recorded or not), the machine goes without it;
     * recovered: recorded as failed but deployed fine since; ahead: being deployed
     * ahead of the machine, whose deploy tells whether that works.
     */
    as: "failed" | "recovered" | "ahead";
  };
}

/** What the machine uses in the end, and what the create does about the cache afterwards. */
export interface CacheSettlement {
  appName: string | null;
  prebuilds: boolean;
  /** Run once the machine is deployed, beside its boot; never throws. */
  afterDeploy: AfterDeploy;
}

/**
 * The cache the new machine should use, from the snapshot the create already read; made
 * (not yet deployed) when the server has none.
 */
export async function ensureImageCache(
  d: MachineDeps,
  snapshot: ProjectSnapshot,
  environmentId: string,
  serverId: string | null,
): Promise<CachePlan> {
  const none = { serverId, appName: null, prebuilds: false };
  if (!wantsImageCache(d)) return none;
  try {
    const existing = cachesOn(snapshot, serverId)[0];
    if (!existing) {
      const made = await createCache(d, environmentId, serverId);
      return { serverId, appName: made.appName, prebuilds: wantsPrebuilds(d), made };
    }
    const { compose, failure } = existing;
    const cache = refOf(existing);
    const status = compose.composeStatus;
    const prebuilds = existing.prebuilds && wantsPrebuilds(d);
    if (failure && status === "done") {
      return { serverId, appName: compose.appName, prebuilds, seen: { cache, as: "recovered" } };
    }
    if (failure || status === "error") {
      return { ...none, seen: { cache, as: "failed" } };
    }
    const addPrebuilds = wantsPrebuilds(d) && !existing.prebuilds;
    const upgrade = addPrebuilds || !existing.agents;
    if (upgrade) {
      // Made by an older provider or with PREBUILDS=false: the prebuild services and the
      // agent cache join it. Its cache service is unchanged, so compose leaves the
      // running registry alone.
      d.log.info(
        `adding ${
          upgradeWhat(addPrebuilds, !existing.agents)
        } to the image cache ${compose.appName}`,
      );
      // A prebuild registry it has stays, whatever this run's PREBUILDS says.
      const withPrebuilds = d.config.prebuilds || existing.prebuilds;
      const file = cacheFileFor({ ...d.config, prebuilds: withPrebuilds }, d.providerVersion);
      const now = { ...cache, prebuilds: withPrebuilds, agents: true };
      await writeFailure(d.api, now, d.providerVersion, null, file);
      Object.assign(cache, now);
    } else if (status === "idle") {
      // Made by a create that died before deploying it: deployed ahead of the machine's.
      d.log.info(`the image cache ${compose.appName} was never deployed; deploying it`);
    }
    if (upgrade || status === "idle") await d.api.deployCompose(compose.composeId, DEPLOY_TITLE);
    const ahead = status === "done" && !upgrade ? undefined : { cache, as: "ahead" as const };
    return {
      serverId,
      appName: compose.appName,
      prebuilds: prebuilds || addPrebuilds,
      ...(ahead ? { seen: ahead } : {}),
    };
  } catch (err) {
    unavailable(d, serverId, err);
    return none;
  }
}

/**
 * After the create re-read the project (its port check), with `mine` the machine's new
 * service: parallel first creates on a server may each have made a cache; all converge
 * on the oldest, as with projects; the run that made it deploys it, the others remove
 * theirs undeployed. A failed cache is retried by this run only if its machine is the
 * first made since the retry time. Returns the cache the machine uses in the end.
 */
export async function settleImageCache(
  d: MachineDeps,
  plan: CachePlan,
  fresh: ProjectSnapshot,
  mine: Made,
): Promise<CacheSettlement> {
  try {
    if (plan.made) return await settleMade(d, plan.made, plan.serverId, fresh, mine);
    const seen = plan.seen;
    const uses = { appName: plan.appName, prebuilds: plan.prebuilds };
    if (!seen) return { ...uses, afterDeploy: NOTHING_AFTER };
    if (seen.as === "ahead") return { ...uses, afterDeploy: recordIfDropped(d, seen.cache, mine) };
    if (seen.as === "recovered") return { ...uses, afterDeploy: clearRecord(d, seen.cache) };
    return {
      appName: null,
      prebuilds: false,
      afterDeploy: settleFailed(d, seen.cache, fresh, mine),
    };
  } catch (err) {
    unavailable(d, plan.serverId, err);
    return { appName: null, prebuilds: false, afterDeploy: NOTHING_AFTER };
  }
}

async function settleMade(
  d: MachineDeps,
  made: Compose,
  serverId: string | null,
  fresh: ProjectSnapshot,
  mine: Made,
): Promise<CacheSettlement> {
  const seen = cachesOn(fresh, serverId);
  const all = seen.map((c) => c.compose);
  if (!all.some((c) => c.composeId === made.composeId)) all.push(made);
  const canonical = all.sort(byAge)[0];
  const ours = canonical.composeId === made.composeId;
  // A parallel run's cache has prebuilds when its marker says so (its options decided).
  const theirs = seen.find((c) => c.compose.composeId === canonical.composeId);
  const has = ours ? wantsPrebuilds(d) : theirs?.prebuilds ?? false;
  const agents = ours || (theirs?.agents ?? false);
  const cache = { composeId: canonical.composeId, appName: canonical.appName, serverId };
  if (!ours) {
    d.log.info(`a parallel create made the image cache first; using ${canonical.appName}`);
    await d.api.deleteCompose(made.composeId, true).catch(() => {});
  } else {
    await d.api.deployCompose(made.composeId, DEPLOY_TITLE);
  }
  return {
    appName: canonical.appName,
    prebuilds: has && wantsPrebuilds(d),
    afterDeploy: recordIfDropped(d, { ...cache, prebuilds: has, agents }, mine),
  };
}

/** The machine goes without the failed cache; the warning, and who records or retries it. */
function settleFailed(
  d: MachineDeps,
  cache: CacheRef,
  fresh: ProjectSnapshot,
  mine: Made,
): AfterDeploy {
  // The re-read may show what a parallel run did meanwhile: recorded, removed, retried.
  const now = cachesOn(fresh, cache.serverId).find((c) => c.compose.composeId === cache.composeId);
  if (!now) return NOTHING_AFTER; // removed: the next create makes a new one
  const status = now.compose.composeStatus;
  if (!now.failure) return status === "error" ? recordFailure(d, cache, mine) : NOTHING_AFTER;
  if (status === "running") {
    warnSkipped(d, cache, now.failure, "under way");
    return NOTHING_AFTER;
  }
  if (status === "done") return clearRecord(d, cache);
  if (!retryIsMine(now.failure, mine, fresh, cache.serverId)) {
    warnSkipped(d, cache, now.failure, "waits");
    return NOTHING_AFTER;
  }
  warnSkipped(d, cache, now.failure, "this run");
  return retryCache(d, cache, now.failure, mine);
}

/**
 * Whether this run retries: its machine is the oldest on the server that Dokploy made at
 * or after the retry time. Parallel creates each see, in their re-read, every machine
 * made before theirs, so they agree; Dokploy's clock decides, not ours.
 */
export function retryIsMine(
  failure: CacheFailure,
  mine: Made,
  fresh: ProjectSnapshot,
  serverId: string | null,
): boolean {
  const due = Date.parse(failure.retryAt);
  const since = (c: Pick<ComposeSummary, "createdAt">) => Date.parse(c.createdAt ?? "") >= due;
  if (!since(mine)) return false;
  const rivals = fresh.machines.map((m) => m.compose)
    .filter((c) => (c.serverId ?? null) === serverId && since(c) && c.composeId !== mine.composeId);
  return rivals.every((c) => byAge(mine, c) < 0);
}

function refOf(c: MarkedCache): CacheRef {
  return {
    composeId: c.compose.composeId,
    appName: c.compose.appName,
    serverId: c.serverId,
    prebuilds: c.prebuilds,
    agents: c.agents,
  };
}

function upgradeWhat(prebuilds: boolean, agents: boolean): string {
  if (prebuilds && agents) return "the prebuild registry and the agent cache";
  return prebuilds ? "the prebuild registry" : "the agent cache";
}

function unavailable(d: MachineDeps, serverId: string | null, err: unknown) {
  d.log.warn(
    `the shared image cache of server ${serverKey(serverId)} is unavailable (${
      (err as Error).message
    }); this machine pulls images from Docker Hub`,
  );
}

async function createCache(
  d: MachineDeps,
  environmentId: string,
  serverId: string | null,
): Promise<Compose> {
  d.log.info(`creating the shared image cache of server ${serverKey(serverId)} (once per server)`);
  return await d.api.createCompose({
    name: CACHE_NAME,
    appName: CACHE_NAME,
    description: describeCache(serverId, d.providerVersion, null, wantsPrebuilds(d), true),
    environmentId,
    composeFile: cacheFileFor(d.config, d.providerVersion),
    serverId,
  });
}
