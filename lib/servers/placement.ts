/**
 * Placement for DOKPLOY_SERVER_ID=auto (issue 13), as a pure decision: the server with the
 * most headroom for the machine's size. Load is what our machines there asked for (their
 * markers carry their size). Headroom is measured against the server's capacity when
 * Dokploy monitoring reports it for every candidate; otherwise the fewest requested CPUs
 * (then memory) win. Ties go by a hash of machine id and server id, so parallel creates
 * that see the same loads still spread, and the same inputs always give the same answer.
 */
import { fnv1a } from "../hash.ts";

export interface Size {
  cpus: number;
  memoryMiB: number;
}

export interface Candidate {
  serverId: string;
  name: string;
  /** From Dokploy monitoring; absent when the server has none or it did not answer. */
  capacity?: Size;
}

export interface Load extends Size {
  machines: number;
}

export interface Placement {
  candidate: Candidate;
  /** One line for the user: where and why. */
  reason: string;
}

const NO_LOAD: Load = { cpus: 0, memoryMiB: 0, machines: 0 };

export function choosePlacement(
  candidates: readonly Candidate[],
  loads: ReadonlyMap<string, Load>,
  want: Size,
  machineId: string,
): Placement {
  if (candidates.length === 0) throw new Error("choosePlacement needs a candidate");
  const load = (c: Candidate) => loads.get(c.serverId) ?? NO_LOAD;
  const byCapacity = candidates.every((c) => c.capacity);
  const headroom = (c: Candidate) => {
    const cap = c.capacity!;
    const l = load(c);
    return Math.min(
      (cap.cpus - l.cpus - want.cpus) / cap.cpus,
      (cap.memoryMiB - l.memoryMiB - want.memoryMiB) / cap.memoryMiB,
    );
  };
  const ranked = [...candidates].sort((a, b) =>
    (byCapacity ? headroom(b) - headroom(a) : load(a).cpus - load(b).cpus ||
      load(a).memoryMiB - load(b).memoryMiB) ||
    tieBreak(machineId, a.serverId) - tieBreak(machineId, b.serverId) ||
    a.serverId.localeCompare(b.serverId)
  );
  const best = ranked[0];
  const others = candidates.map((c) =>
    byCapacity
      ? `${c.name} ${pct(headroom(c))} free after`
      : `${c.name} ${fmt(load(c).cpus)} CPU/${gib(load(c).memoryMiB)}`
  ).join(", ");
  const why = byCapacity
    ? `the most headroom for ${fmt(want.cpus)} CPU/${gib(want.memoryMiB)} (${others})`
    : `the fewest CPUs requested by our machines (${others}${
      candidates.some((c) => c.capacity) ? "; not every server reports its capacity" : ""
    })`;
  return { candidate: best, reason: `server auto: placed on ${best.name}: ${why}` };
}

/** A stable pseudo-random rank of server for machine (FNV-1a of both ids). */
function tieBreak(machineId: string, serverId: string): number {
  return fnv1a(`${machineId}\u0000${serverId}`);
}

const fmt = (n: number) => String(Math.round(n * 100) / 100);
const gib = (mib: number) => `${fmt(mib / 1024)} GiB`;
const pct = (x: number) => `${Math.round(x * 100)}%`;
