/**
 * The machine's spec as this provider renders it into Dokploy: the compose file, the
 * description carrying the marker (see naming.ts), and publishing a changed spec.
 */
import { userInfo } from "node:os";
import type { Env } from "../context/machine.ts";
import { writeKnownHosts } from "../ssh/keys.ts";
import { renderComposeFile } from "./compose.ts";
import { effectiveCpus } from "./cpu_cap.ts";
import type { MachineDeps } from "./deps.ts";
import { describeMachine } from "./naming.ts";
import { type MachineState, writeState } from "./state.ts";

/** The compose file for this machine's options, SSH port and remembered CPU cap. */
export function machineComposeFile(
  d: MachineDeps,
  authorizedKey: string,
  at: Pick<MachineState, "sshPort" | "cpuLimit" | "previews" | "prebuilds"> & {
    imageCache?: string | null;
  },
): string {
  return renderComposeFile({
    machineId: d.machine.machineId,
    image: d.config.image,
    dockerMode: d.config.dockerMode,
    cpus: effectiveCpus(d.config.cpus, at.cpuLimit),
    memoryMiB: d.config.memoryMiB,
    sshPort: at.sshPort,
    authorizedKey,
    inactivityTimeoutSec: d.config.inactivityTimeoutSec,
    dokployNetwork: d.config.dokployNetwork,
    disableAgentTelemetry: d.config.disableAgentTelemetry,
    imageCache: at.imageCache ?? null,
    prebuilds: at.prebuilds === true,
    backups: d.config.backup !== null,
    previews: at.previews,
    providerVersion: d.providerVersion,
  });
}

/** The description with the marker; the owner's id goes in the marker (lib/identity). */
export function machineDescription(
  d: MachineDeps,
  at: Pick<MachineState, "sshPort" | "cpuLimit" | "owner">,
): string {
  const size = { cpus: effectiveCpus(d.config.cpus, at.cpuLimit), memoryMiB: d.config.memoryMiB };
  const marker = { machineId: d.machine.machineId, sshPort: at.sshPort, ...size };
  const owned = at.owner
    ? {
      ...marker,
      ownerId: at.owner.userId,
      ...(at.owner.origin ? { origin: at.owner.origin } : {}),
    }
    : marker;
  return describeMachine(owned, {
    providerVersion: d.providerVersion,
    owner: at.owner?.email ?? legacyOwner(),
  });
}

/**
 * The spec changed (port moved, CPUs capped): record it locally first — a run killed
 * in between then re-renders the new spec — and then in Dokploy.
 */
export async function publishSpec(
  d: MachineDeps,
  state: MachineState,
  authorizedKey: string,
): Promise<void> {
  const folder = d.machine.machineFolder;
  await writeState(folder, state);
  await writeKnownHosts(folder, state.sshHost, state.sshPort, state.hostPublicKey);
  await d.api.updateCompose(state.composeId, {
    composeFile: machineComposeFile(d, authorizedKey, state),
    description: machineDescription(d, state),
  });
}

/**
 * The text older machines carried (`user@host`): kept for a machine whose owner was never
 * recorded, until it is claimed. USER is often unset (root in a container, some CI
 * runners), so the OS account name is the fallback.
 */
export function legacyOwner(env: Env = Deno.env.toObject()): string {
  const user = env.USER || env.USERNAME || osAccountName() || "unknown";
  let host = "unknown";
  try {
    host = Deno.hostname();
  } catch { /* no sys permission: the owner is informative only */ }
  return `${user}@${host}`.replace(/[\[\];]/g, "");
}

function osAccountName(): string | null {
  try {
    return userInfo().username || null;
  } catch {
    return null; // a uid without a passwd entry
  }
}
