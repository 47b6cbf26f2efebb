/**
 * SSH port allocation. Dokploy checks nothing about published ports, so the provider
 * allocates them itself: a random free port of the range (random, so parallel
 * creates rarely collide), and a deterministic tie-break when two did.
 */
import type { PortRange } from "../config.ts";
import { ProviderError } from "../errors.ts";

export function chooseSshPort(
  range: PortRange,
  used: ReadonlySet<number>,
  random: () => number = Math.random,
): number {
  const size = range.to - range.from + 1;
  const start = Math.floor(random() * size);
  for (let i = 0; i < size; i++) {
    const port = range.from + ((start + i) % size);
    if (!used.has(port)) return port;
  }
  throw new ProviderError(
    `every port of SSH_PORT_RANGE ${range.from}-${range.to} is taken by a machine; widen SSH_PORT_RANGE or delete unused machines`,
  );
}

export interface PortClaim {
  composeId: string;
  createdAt: string;
  sshPort: number;
}

/**
 * True when another service claimed the same port first (older createdAt, then
 * smaller id): the later claimant moves, so exactly one of them keeps the port.
 */
export function mustYieldPort(mine: PortClaim, others: readonly PortClaim[]): boolean {
  return others.some((o) =>
    o.composeId !== mine.composeId && o.sshPort === mine.sshPort &&
    (o.createdAt < mine.createdAt ||
      (o.createdAt === mine.createdAt && o.composeId < mine.composeId))
  );
}
