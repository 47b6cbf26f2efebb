/**
 * Maps Dokploy's view of a machine to DevPod's four states (devpod-protocol.md §3.8).
 * `composeStatus` is the deploy pipeline; the container state is the truth about
 * whether the machine runs. They are kept apart here on purpose.
 */
import type { ComposeSummary, Container } from "../dokploy/api.ts";

export type MachineStatus = "Running" | "Busy" | "Stopped" | "NotFound";

export type StatusVerdict =
  | { status: MachineStatus }
  | { deployFailed: true };

export function mapStatus(
  compose: Pick<ComposeSummary, "composeStatus"> | null,
  containers: readonly Pick<Container, "state" | "name">[],
): StatusVerdict {
  if (!compose) return { status: "NotFound" };
  if (compose.composeStatus === "running") return { status: "Busy" };
  // Only the machine's own container says whether it runs: its backup guard keeps
  // running while the machine is stopped.
  const states = machineContainers(containers).map((c) => c.state.toLowerCase());
  if (states.includes("running")) return { status: "Running" };
  if (states.some((s) => ["created", "removing"].includes(s))) return { status: "Busy" };
  // "restarting" is a crash loop more often than a blip, and DevPod polls Busy with no
  // end: Stopped sends it to `start`, which brings the machine up or says why it cannot.
  if (compose.composeStatus === "error") return { deployFailed: true };
  // Exited, paused, dead, or never deployed: `start` (re)creates it.
  return { status: "Stopped" };
}

/**
 * The containers of the `machine` service among a project's (compose v2 names them
 * `<project>-machine-1`, v1 `<project>_machine_1`).
 */
export function machineContainers<T extends Pick<Container, "name">>(
  containers: readonly T[],
): T[] {
  return containers.filter((c) => /[-_]machine[-_]\d+$/.test(c.name));
}
