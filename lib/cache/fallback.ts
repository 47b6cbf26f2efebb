/**
 * The cache never breaks a machine: when the network of the cache a machine joins is
 * gone (the cache was removed in Dokploy, or its first deploy failed), compose refuses
 * to start the machine. The machine then drops the cache from its spec and pulls from
 * Docker Hub, as without IMAGE_CACHE.
 */
import type { MachineDeps } from "../machine/deps.ts";
import type { MachineState } from "../machine/state.ts";

/**
 * compose checks external networks first ("network X declared as external, but could
 * not be found"; v1 capitalises); on a swarm node, as Dokploy's servers are, compose
 * skips that check and the daemon refuses the container instead ("network X not found",
 * "No such network: X").
 */
const MISSING_NETWORK =
  /network (\S+) declared as external, but could not be found|network (\S+) not found|no such network: (\S+)/i;

/** Whether `err` says the cache's network is missing; then `state` no longer uses the cache. */
export function dropImageCacheFor(
  err: unknown,
  d: Pick<MachineDeps, "log">,
  state: MachineState,
): boolean {
  const m = MISSING_NETWORK.exec(err instanceof Error ? err.message : String(err));
  const missing = m && (m[1] ?? m[2] ?? m[3])?.replace(/[.,;:'"|]+$/, "");
  if (!state.imageCache || missing !== state.imageCache) return false;
  d.log.warn(
    `the shared image cache ${state.imageCache} is missing on the server (removed, or its deploy failed: 'doctor' tells); this machine now pulls images from Docker Hub`,
  );
  delete state.imageCache;
  delete state.prebuilds; // its prebuild registry is part of it
  return true;
}
