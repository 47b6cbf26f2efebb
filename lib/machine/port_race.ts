/**
 * Keeping a machine's SSH port its own on the server: two creates that picked the same
 * port settle who moves (see ports.ts), and a port held outside our project is left
 * for one neither tried nor claimed.
 */
import type { Compose } from "../dokploy/api.ts";
import type { MachineDeps } from "./deps.ts";
import type { ProjectSnapshot } from "./project.ts";
import { chooseSshPort, mustYieldPort, type PortClaim } from "./ports.ts";
import { publishSpec } from "./spec.ts";
import type { MachineState } from "./state.ts";

/** How often a create re-checks the port after moving (each check is one more claim read). */
export const PORT_ATTEMPTS = 4;

/** The claims of our machines as they stand now: a fresh read, since parallel creates race. */
export type ReadClaims = () => Promise<PortClaim[]>;

/** Two creates that picked the same port: the later claimant moves (see ports.ts). */
export async function settlePortRace(
  d: MachineDeps,
  compose: Compose,
  state: MachineState,
  authorizedKey: string,
  readClaims: ReadClaims,
): Promise<void> {
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const claims = await readClaims();
    const mine = {
      composeId: compose.composeId,
      createdAt: compose.createdAt ?? "",
      sshPort: state.sshPort,
    };
    if (!mustYieldPort(mine, claims)) return;
    state.sshPort = chooseSshPort(d.config.sshPortRange, new Set(claims.map((c) => c.sshPort)));
    d.log.debug(`port race lost; moving to ${state.sshPort}`);
    await publishSpec(d, state, authorizedKey);
  }
}

/** A port neither in `tried` nor claimed by one of our machines; added to `tried`. */
export async function untriedPort(
  d: MachineDeps,
  tried: Set<number>,
  readClaims: ReadClaims,
): Promise<number> {
  for (const c of await readClaims()) tried.add(c.sshPort);
  const port = chooseSshPort(d.config.sshPortRange, tried);
  tried.add(port);
  return port;
}

/** The SSH ports our machines on the target server have published, per the snapshot. */
export function portClaims(snapshot: ProjectSnapshot, serverId: string | null): PortClaim[] {
  return snapshot.machines
    .filter(({ compose }) => (compose.serverId ?? null) === serverId)
    .map(({ compose, marker }) => ({
      composeId: compose.composeId,
      createdAt: compose.createdAt ?? "",
      sshPort: marker.sshPort,
    }));
}
