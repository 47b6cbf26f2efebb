/**
 * The shared image caches of the project, one per server, for `list`, `doctor` and
 * `cleanup`: their container state, the storage size they last logged and how many of
 * our machines use each.
 */
import type { ComposeStatus, DokployApi } from "../dokploy/api.ts";
import type { ProjectSnapshot } from "../machine/project.ts";
import type { CacheFailure } from "./failure.ts";
import { AGENT_SERVICE, agentCacheAddress, lastAgentSize, storedAgents } from "../agent/spec.ts";
import {
  FRONT_SERVICE,
  lastPrebuildSize,
  PREBUILD_SIZE_SEARCH,
  prebuildAddress,
  STORE_SERVICE,
} from "../prebuild/spec.ts";
import { CACHE_SERVICE, lastLoggedSize, mirrorUrl, SIZE_SEARCH } from "./spec.ts";

export interface ImageCacheInfo {
  /** The server it serves; null is the Dokploy host. */
  serverId: string | null;
  composeId: string;
  appName: string;
  mirror: string;
  /** Running, Stopped, Busy (deploying) or Error (its last deploy failed). */
  state: "Running" | "Stopped" | "Busy" | "Error";
  composeStatus: ComposeStatus;
  containers: number;
  /** What its storage held when it last logged a change; null when unknown. */
  sizeKiB: number | null;
  /**
   * Its prebuild registry (lib/prebuild): the front's address on the cache's network and
   * what its store last logged holding; null when the cache has none.
   */
  prebuilds: { address: string; running: boolean; sizeKiB: number | null } | null;
  /**
   * Its agent cache (lib/agent): its address, what it last logged holding and the
   * releases it logged storing (`<line> <version> <arch>`); null when the cache has none.
   */
  agents: { address: string; running: boolean; sizeKiB: number | null; stored: string[] } | null;
  /** Machines of this project on its server (a cache in use is never removed). */
  machines: number;
  createdAt: string | null;
  /**
   * Its last deploy failed, as recorded (reason, attempts in a row, when it failed and when
   * the first create after retries it); null when none is recorded.
   */
  failure: CacheFailure | null;
}

/** Per cache: containers, plus the size log line when it runs (two calls each, in parallel). */
export async function listImageCaches(
  api: DokployApi,
  snapshot: ProjectSnapshot,
): Promise<ImageCacheInfo[]> {
  return await Promise.all(snapshot.caches.map(async (c) => {
    const { compose, serverId, failure } = c;
    const containers = await api.containers(compose.appName, compose.serverId ?? null);
    // Each service's own container: the cache may run while its prebuild registry does not.
    const runs = (service: string) =>
      containers.some((c) => isServiceContainer(c.name, compose.appName, service) && isRunning(c));
    const running = runs(CACHE_SERVICE);
    const prebuildsRun = runs(STORE_SERVICE) && runs(FRONT_SERVICE);
    const agentsRun = runs(AGENT_SERVICE);
    const state = compose.composeStatus === "running"
      ? "Busy"
      : running
      ? "Running"
      : compose.composeStatus === "error"
      ? "Error"
      : "Stopped";
    return {
      serverId,
      composeId: compose.composeId,
      appName: compose.appName,
      mirror: mirrorUrl(compose.appName),
      state,
      composeStatus: compose.composeStatus,
      containers: containers.length,
      sizeKiB: running
        ? await loggedSize(api, compose, CACHE_SERVICE, SIZE_SEARCH, lastLoggedSize)
        : null,
      prebuilds: c.prebuilds
        ? {
          address: prebuildAddress(compose.appName),
          running: prebuildsRun,
          sizeKiB: prebuildsRun
            ? await loggedSize(api, compose, STORE_SERVICE, PREBUILD_SIZE_SEARCH, lastPrebuildSize)
            : null,
        }
        : null,
      agents: c.agents ? await agentsOf(api, compose, agentsRun) : null,
      machines: snapshot.machines.filter((m) => (m.compose.serverId ?? null) === serverId).length,
      createdAt: compose.createdAt ?? null,
      // A record its last deploy outlived (done since) is stale: the next create clears it.
      failure: compose.composeStatus === "done" ? null : failure,
    };
  }));
}

/** The agent cache's address, size and stored releases, from one read of its log. */
async function agentsOf(
  api: DokployApi,
  compose: { composeId: string; appName: string },
  running: boolean,
): Promise<NonNullable<ImageCacheInfo["agents"]>> {
  const address = agentCacheAddress(compose.appName);
  if (!running) return { address, running, sizeKiB: null, stored: [] };
  const log = await api.containerLog(
    compose.composeId,
    `${compose.appName}-${AGENT_SERVICE}`,
    10_000,
    "devpod-agents",
  ).catch(() => ""); // an older Dokploy (no readLogs) or a container that just stopped
  return { address, running, sizeKiB: lastAgentSize(log), stored: storedAgents(log) };
}

/** The last size a service of the cache logged (its container log, searched). */
async function loggedSize(
  api: DokployApi,
  compose: { composeId: string; appName: string },
  service: string,
  search: string,
  parse: (log: string) => number | null,
) {
  try {
    const log = await api.containerLog(
      compose.composeId,
      `${compose.appName}-${service}`,
      10_000,
      search,
    );
    return parse(log);
  } catch {
    return null; // an older Dokploy (no readLogs) or a container that just stopped
  }
}

/** `<appName>-<service>-1` (compose v2, as Dokploy lists it; v1 writes `_`). */
function isServiceContainer(name: string, appName: string, service: string): boolean {
  const n = name.replace(/^\//, "");
  return [`${appName}-${service}-`, `${appName}_${service}_`].some((p) =>
    n.startsWith(p) && /^\d+$/.test(n.slice(p.length))
  );
}

function isRunning(c: { state: string }): boolean {
  return c.state.toLowerCase() === "running";
}

/** Its last deploy failed (a record, or Dokploy's status) and no deploy of it runs now. */
export function isFailed(c: ImageCacheInfo): boolean {
  return c.state !== "Busy" && (c.failure !== null || c.composeStatus === "error");
}

/** `12.3 MiB` for a KiB count. */
export function formatKiB(kib: number | null): string {
  if (kib === null) return "size unknown";
  if (kib < 1024) return `${kib} KiB`;
  if (kib < 1024 * 1024) return `${(kib / 1024).toFixed(1)} MiB`;
  return `${(kib / 1024 / 1024).toFixed(2)} GiB`;
}
