/**
 * Making sure the machine's server runs the shared image cache before the machine is
 * deployed. It is found by its marker in the project snapshot the create already read, so
 * every create after the first on a server costs no extra call. The first create makes
 * it (two calls: create and deploy) and queues its deploy ahead of the machine's: Dokploy
 * runs one deploy at a time per server, so the cache's network exists when the
 * machine's deploy starts.
 *
 * Nothing here may break a machine: when the cache cannot be had, the machine is made
 * without it and its dockerd pulls from Docker Hub as before.
 */
import type { Compose } from "../dokploy/api.ts";
import type { MachineDeps } from "../machine/deps.ts";
import { byAge, type MarkedCache, type ProjectSnapshot } from "../machine/project.ts";
import { CACHE_NAME, describeCache, renderCacheComposeFile, serverKey } from "./spec.ts";

/** Whether machines of this configuration use a cache (only a nested dockerd pulls). */
export function wantsImageCache(d: Pick<MachineDeps, "config">): boolean {
  return d.config.imageCache && d.config.dockerMode === "dind";
}

/** The caches serving this server, oldest (the one everybody uses) first. */
export function cachesOn(snapshot: ProjectSnapshot, serverId: string | null): MarkedCache[] {
  return snapshot.caches.filter((c) => c.serverId === serverId);
}

/** The cache a new machine is made with, before the create re-reads the project. */
export interface CachePlan {
  /** The server the machine goes to (null: the Dokploy host). */
  serverId: string | null;
  /** The cache's appName; null: none (off, or it cannot be had now). */
  appName: string | null;
  /** The cache this run just made, not deployed yet: settleImageCache decides its fate. */
  made?: Compose;
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
  if (!wantsImageCache(d)) return { serverId, appName: null };
  try {
    const existing = cachesOn(snapshot, serverId)[0];
    if (!existing) {
      const made = await createCache(d, environmentId, serverId);
      return { serverId, appName: made.appName, made };
    }
    // Never deployed, or its last deploy failed: queue one more, ahead of the machine's.
    if (existing.compose.composeStatus === "error" || existing.compose.composeStatus === "idle") {
      d.log.info(`the image cache ${existing.compose.appName} is not deployed; deploying it`);
      await d.api.deployCompose(existing.compose.composeId, TITLE);
    }
    return { serverId, appName: existing.compose.appName };
  } catch (err) {
    unavailable(d, serverId, err);
    return { serverId, appName: null };
  }
}

/**
 * After the create re-read the project (its port check): parallel first creates on a
 * server may each have made a cache. All converge on the oldest, as with projects; the
 * run that made it deploys it, the others remove theirs undeployed. Returns the cache
 * the machine uses in the end.
 */
export async function settleImageCache(
  d: MachineDeps,
  plan: CachePlan,
  fresh: ProjectSnapshot,
): Promise<string | null> {
  const mine = plan.made;
  if (!mine) return plan.appName;
  try {
    const all = cachesOn(fresh, plan.serverId).map((c) => c.compose);
    if (!all.some((c) => c.composeId === mine.composeId)) all.push(mine);
    const canonical = all.sort(byAge)[0];
    if (canonical.composeId !== mine.composeId) {
      d.log.info(`a parallel create made the image cache first; using ${canonical.appName}`);
      await d.api.deleteCompose(mine.composeId, true).catch(() => {});
      return canonical.appName;
    }
    await d.api.deployCompose(mine.composeId, TITLE);
    return mine.appName;
  } catch (err) {
    unavailable(d, plan.serverId, err);
    return null;
  }
}

const TITLE = "devpod: image cache";

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
    description: describeCache(serverId, d.providerVersion),
    environmentId,
    composeFile: renderCacheComposeFile({
      image: d.config.imageCacheImage,
      upstream: d.config.imageCacheUpstream,
      providerVersion: d.providerVersion,
    }),
    serverId,
  });
}
