/**
 * Finds a machine: through MACHINE_FOLDER/state.json (one compose.one), or — when that
 * is lost — by the id marker of the services in our project (never a global name search).
 */
import type { ProviderConfig } from "../config.ts";
import { assertMine, pickMachine } from "../identity/ownership.ts";
import type { Compose, ComposeSummary, DokployApi, Server } from "../dokploy/api.ts";
import { ProviderError } from "../errors.ts";
import type { MachineDeps } from "./deps.ts";
import { readProjectSnapshot } from "./project.ts";
import { type MachineState, readState } from "./state.ts";

/** Where a machine stands: local state and/or its Dokploy service. */
export interface Located<C extends ComposeSummary = Compose> {
  state: MachineState | null;
  compose: C | null;
}

/** Through state.json: its service by composeId (null when gone); null without the file. */
export async function locateByState(
  d: MachineDeps,
): Promise<Located & { state: MachineState } | null> {
  const state = await readState(d.machine.machineFolder);
  return state && { state, compose: await d.api.composeOne(state.composeId) };
}

/**
 * The machine with its whole service row (compose file, deployments): for start, stop and
 * describe; `unclaimed` as for findByMarker.
 */
export async function locateMachine(
  d: MachineDeps,
  unclaimed: "allow" | "refuse" = "refuse",
): Promise<Located> {
  const byState = await locateByState(d);
  if (byState) return byState;
  const listed = await findByMarker(d, unclaimed);
  return { state: null, compose: listed && await d.api.composeOne(listed.composeId) };
}

/**
 * The machine's service as far as the project lists it, which is all status needs:
 * found by marker, it costs no compose.one.
 */
export async function locateListed(d: MachineDeps): Promise<Located<ComposeSummary>> {
  return await locateByState(d) ?? { state: null, compose: await findByMarker(d, "allow") };
}

/**
 * The caller's machine found by its marker in our project (project.all + project.one).
 * Another owner's machine of the same id is not the caller's: it is not found. One without
 * an owner yet is found only where `unclaimed` allows it (status and describe read it, start
 * claims it by proving it holds the keys: adopt.ts); stop and delete refuse it.
 */
export async function findByMarker(
  d: MachineDeps,
  unclaimed: "allow" | "refuse" = "refuse",
): Promise<ComposeSummary | null> {
  const [snapshot, me] = await Promise.all([
    readProjectSnapshot(d.api, d.config.projectName),
    d.api.identity(),
  ]);
  const found = pickMachine(snapshot.machines, d.machine.machineId, me);
  if (!found || found.relation === "theirs") return null;
  if (found.relation === "unknown" && unclaimed === "refuse") {
    assertMine(found.machine, me, "stop or delete without state.json");
  }
  return found.machine.compose;
}

/** The address DevPod dials: SSH_HOST, else the remote server's IP, else the URL's host. */
export function sshHostFor(
  config: ProviderConfig,
  server: Pick<Server, "ipAddress"> | null,
): string {
  return config.sshHost ?? server?.ipAddress ?? new URL(config.serverUrl).hostname;
}

/** sshHostFor a machine's server known by id only (one server.one when it is remote). */
export async function resolveSshHost(
  api: DokployApi,
  config: ProviderConfig,
  serverId: string | null,
): Promise<string> {
  if (config.sshHost || serverId === null) return sshHostFor(config, null);
  const server = await api.server(serverId);
  if (!server) {
    throw new ProviderError(
      `the machine's Dokploy server ${serverId} no longer exists; the machine cannot be reached (delete it, or restore the server in Dokploy)`,
    );
  }
  return sshHostFor(config, server);
}
