/**
 * Where a create puts the machine (DOKPLOY_SERVER_ID): the Dokploy host (`local`, or
 * empty), a remote server named by id or name, or `auto` — placement among the active
 * deploy servers, skipping any Dokploy cannot reach. The machine then stays on its
 * server for life: Dokploy cannot move a compose service.
 */
import type { ComposeSummary, DokployApi, Server } from "../dokploy/api.ts";
import type { MachineDeps } from "../machine/deps.ts";
import { byAge, type ProjectSnapshot } from "../machine/project.ts";
import { findServer, isUsable, listing } from "./directory.ts";
import { type Candidate, choosePlacement, type Load, type Size } from "./placement.ts";
import { whyUnreachable } from "./unreachable.ts";

export interface Target {
  /** null: the Dokploy host. */
  serverId: string | null;
  server: Server | null;
  /**
   * auto only: placement again once the create's service exists, counting the machines
   * made before it (a parallel create may have gone to the same server meanwhile). A
   * different answer is where the machine should go instead; null keeps it. A moved
   * service is the newest: its own recheck counts every other machine.
   */
  recheck?: (fresh: ProjectSnapshot, mine: ComposeSummary) => Promise<Target | null>;
}

/** The size a machine asks for when its marker predates sizes: the default preset's. */
const UNKNOWN_SIZE: Size = { cpus: 2, memoryMiB: 4096 };

export async function resolveTarget(d: MachineDeps, snapshot: ProjectSnapshot): Promise<Target> {
  const choice = d.config.server;
  if (choice.kind === "local") return { serverId: null, server: null };
  const servers = await d.api.servers();
  if (choice.kind === "named") {
    const server = findServer(servers, choice.ref);
    return { serverId: server.serverId, server };
  }
  return await placeAuto(d, snapshot, servers);
}

async function placeAuto(
  d: MachineDeps,
  snapshot: ProjectSnapshot,
  servers: Server[],
): Promise<Target> {
  const usable = servers.filter(isUsable);
  if (usable.length === 0) {
    d.log.info(
      `server auto: no active deploy server (${listing(servers)}); placed on the Dokploy host`,
    );
    return { serverId: null, server: null };
  }
  const want = { cpus: d.config.cpus, memoryMiB: d.config.memoryMiB };
  let candidates = await withCapacity(d.api, usable);
  const target = (serverId: string, recheck?: Target["recheck"]): Target => ({
    serverId,
    server: servers.find((s) => s.serverId === serverId)!,
    ...(recheck ? { recheck } : {}),
  });
  /**
   * The best reachable candidate for these loads, null when Dokploy reaches none;
   * `checked` was validated earlier in this run.
   */
  const place = async (loads: Map<string, Load>, checked?: string | null) => {
    while (candidates.length > 0) {
      const { candidate, reason } = choosePlacement(candidates, loads, want, d.machine.machineId);
      if (candidate.serverId === checked) return { serverId: candidate.serverId, reason };
      // One check over SSH before the machine goes there: Dokploy keeps an unreachable
      // server "active", and a deploy to it would fail only after its SSH timeout.
      const unreachable = await whyUnreachable(d.api, candidate.serverId);
      if (!unreachable) return { serverId: candidate.serverId, reason };
      d.log.warn(
        `server auto: Dokploy cannot reach ${candidate.name} (${unreachable}); trying another`,
      );
      candidates = candidates.filter((c) => c !== candidate);
    }
    return null;
  };
  const recheck = async (fresh: ProjectSnapshot, mine: ComposeSummary) => {
    const older = {
      ...fresh,
      machines: fresh.machines.filter((m) => byAge(m.compose, mine) < 0),
    };
    const again = await place(loadsOf(older), mine.serverId);
    if (!again || again.serverId === (mine.serverId ?? null)) return null;
    d.log.info(`${again.reason} (a parallel create went to the first choice meanwhile)`);
    return target(again.serverId, recheck);
  };
  const first = await place(loadsOf(snapshot));
  if (first) {
    d.log.info(first.reason);
    return target(first.serverId, recheck);
  }
  d.log.warn("server auto: Dokploy reaches none of its remote servers; placed on the Dokploy host");
  return { serverId: null, server: null };
}

/** What our machines ask for per server, from their markers (the snapshot already read). */
export function loadsOf(snapshot: ProjectSnapshot): Map<string, Load> {
  const loads = new Map<string, Load>();
  for (const { compose, marker } of snapshot.machines) {
    const key = compose.serverId ?? "";
    const l = loads.get(key) ?? { cpus: 0, memoryMiB: 0, machines: 0 };
    l.cpus += marker.cpus ?? UNKNOWN_SIZE.cpus;
    l.memoryMiB += marker.memoryMiB ?? UNKNOWN_SIZE.memoryMiB;
    l.machines += 1;
    loads.set(key, l);
  }
  return loads;
}

/**
 * Candidates with the capacity Dokploy monitoring reports (one call per server that has
 * it set up, in parallel); a server whose endpoint does not answer has none.
 */
async function withCapacity(api: DokployApi, servers: Server[]): Promise<Candidate[]> {
  return await Promise.all(servers.map(async (s) => {
    const m = s.metricsConfig?.server;
    const capacity = m?.port && m.token
      ? await api.serverMetrics(`http://${s.ipAddress}:${m.port}/metrics`, m.token)
        .then(capacityOf, () => undefined)
      : undefined;
    return { serverId: s.serverId, name: s.name, ...(capacity ? { capacity } : {}) };
  }));
}

/** CPU cores and total memory (GB) from monitoring's newest data point. */
export function capacityOf(points: unknown[]): Size | undefined {
  const p = points.at(-1) as Record<string, unknown> | undefined;
  const cpus = Number(p?.cpuCores ?? p?.cpu_cores);
  const memGiB = Number(p?.memTotal ?? p?.mem_total);
  return cpus > 0 && memGiB > 0 ? { cpus, memoryMiB: Math.round(memGiB * 1024) } : undefined;
}
