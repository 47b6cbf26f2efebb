/**
 * Dokploy answered `[]` for the containers of a machine that was deployed. Docker keeps
 * a stopped machine's container, so on a healthy server that list is never empty; `[]`
 * is also Dokploy's answer to any Docker error, such as a remote server it cannot reach
 * over SSH (issue 13). So the list alone never calls a machine stopped: the machine's own
 * pinned SSH endpoint is asked first, then whether Dokploy reaches the server.
 */
import type { ComposeSummary } from "../dokploy/api.ts";
import { requireReachable } from "../servers/unreachable.ts";
import { sshGreets } from "../ssh/ready.ts";
import type { MachineDeps } from "./deps.ts";
import { resolveSshHost } from "./locate.ts";
import { parseMarker } from "./naming.ts";
import type { MachineState } from "./state.ts";

/**
 * Running when the machine's sshd greets on its port; throws (naming the server) when
 * Dokploy cannot reach the server; null when Docker really holds no container (the
 * machine reads Stopped, and `start` recreates it).
 */
export async function statusWithoutContainers(
  d: MachineDeps,
  compose: ComposeSummary,
  state: MachineState | null,
): Promise<"Running" | null> {
  const serverId = compose.serverId ?? null;
  const port = state?.sshPort ?? parseMarker(compose.description)?.sshPort;
  const host = state?.sshHost ?? await resolveSshHost(d.api, d.config, serverId);
  if (port && await sshGreets(host, port)) return "Running";
  await requireReachable(d.api, serverId, "whether the machine runs is unknown");
  return null;
}
