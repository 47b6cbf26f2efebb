/**
 * `describe` (the maintained DevPod fork's `devpod machine describe`): a short account
 * of one machine for a human. It reads what `status` reads, with the whole service row
 * (its compose file says size and image cache) and the server row; it writes nothing, so it works without
 * state.json (the service is found by its marker, as `status` finds it) and never
 * re-keys the machine the way a lifecycle verb's re-adoption would.
 */
import type { Compose, Server } from "../dokploy/api.ts";
import { DokployError, ProviderError } from "../errors.ts";
import { PREBUILD_REPOSITORY } from "../prebuild/spec.ts";
import { SSH_USER } from "./compose.ts";
import type { MachineDeps } from "./deps.ts";
import { deployedSpec } from "./inventory.ts";
import { type Located, locateMachine, sshHostFor } from "./locate.ts";
import { parseMarker } from "./naming.ts";
import { answerStatus } from "./query.ts";
import type { MachineState } from "./state.ts";
import type { MachineStatus } from "./status.ts";

/** One `label: value` line of the description. */
export interface DescribeLine {
  label: string;
  value: string;
}

/** What the built-in lines are made of; extra lines (e.g. the last backup) start from it. */
export interface MachineFacts {
  machineId: string;
  /** Its Dokploy service, the whole row (compose file, deployments). */
  compose: Compose;
  /** The local state, when state.json is there. */
  state: MachineState | null;
  /** The Dokploy server the machine lives on; null for the Dokploy host itself. */
  server: Server | null;
  /** `status`'s answer, or why it has none (a failed deploy, a refused host key, …). */
  status: MachineStatus | { error: string };
}

/**
 * Lines a feature adds below the built-in ones. The seam for "last backup" (lib/backup
 * plugs in through commands/describe.ts): it must not fail the description, so a throw
 * becomes one `note` line.
 */
export type ExtraLines = (d: MachineDeps, facts: MachineFacts) => Promise<DescribeLine[]>;

/** The machine's description; a one-line error when Dokploy has no such machine. */
export async function describeMachine(
  d: MachineDeps,
  extraLines: readonly ExtraLines[] = [],
): Promise<DescribeLine[]> {
  const facts = await gatherFacts(d);
  const lines = builtinLines(d, facts);
  for (const extra of extraLines) {
    try {
      lines.push(...await extra(d, facts));
    } catch (err) {
      lines.push({ label: "note", value: (err as Error).message.split("\n")[0] });
    }
  }
  return lines;
}

/** `label: value` lines, values aligned; the text `describe` prints. */
export function formatDescription(lines: readonly DescribeLine[]): string {
  const width = Math.max(...lines.map((l) => l.label.length)) + 1;
  return lines.map((l) => `${(l.label + ":").padEnd(width)} ${l.value}`).join("\n") + "\n";
}

async function gatherFacts(d: MachineDeps): Promise<MachineFacts> {
  const located = await locateMachine(d, "allow");
  const { compose, state } = located;
  if (!compose) {
    const why = state
      ? `its service ${state.composeId} is gone from Dokploy (state.json is left over)`
      : `no service in Dokploy project "${d.config.projectName}" carries its marker`;
    throw new ProviderError(
      `machine ${d.machine.machineId} does not exist: ${why}; 'devpod up' creates it`,
    );
  }
  const serverId = compose.serverId ?? null;
  const [server, status] = await Promise.all([
    serverId === null ? null : d.api.server(serverId),
    statusOrReason(d, located),
  ]);
  return { machineId: d.machine.machineId, compose, state, server, status };
}

/**
 * `status`'s own decision. A machine whose state cannot be told (failed deploy, refused
 * host key, unreachable server) is still described; Dokploy itself failing is an error.
 */
async function statusOrReason(
  d: MachineDeps,
  located: Located,
): Promise<MachineFacts["status"]> {
  try {
    return await answerStatus(d, located);
  } catch (err) {
    if (err instanceof ProviderError && !(err instanceof DokployError)) {
      return { error: err.message };
    }
    throw err;
  }
}

function builtinLines(d: MachineDeps, f: MachineFacts): DescribeLine[] {
  const { compose, state, server } = f;
  const spec = deployedSpec(compose.composeFile);
  const port = state?.sshPort ?? parseMarker(compose.description)?.sshPort;
  const host = state?.sshHost ?? sshHostFor(d.config, server);
  const createdAt = compose.createdAt ?? state?.createdAt ?? null;
  return [
    { label: "machine", value: f.machineId },
    {
      label: "service",
      value: `${compose.appName} (compose ${compose.composeId}) in project ${d.config.projectName}`,
    },
    { label: "server", value: serverLine(d, compose.serverId ?? null, server) },
    { label: "address", value: port ? `${state?.sshUser ?? SSH_USER}@${host}:${port}` : "unknown" },
    { label: "size", value: sizeLine(spec.cpus, spec.memory) },
    {
      label: "state",
      value: typeof f.status === "string" ? f.status : `unknown: ${f.status.error}`,
    },
    { label: "image cache", value: spec.imageCache ?? "none (pulls go to Docker Hub)" },
    {
      label: "prebuilds",
      value: spec.prebuilds
        ? `--prebuild-repository ${PREBUILD_REPOSITORY} (the server's prebuild registry)`
        : "none on this machine",
    },
    { label: "created", value: createdAt ?? "unknown" },
  ];
}

function serverLine(d: MachineDeps, serverId: string | null, server: Server | null): string {
  if (serverId === null) return `local (the Dokploy host, ${new URL(d.config.serverUrl).host})`;
  if (!server) return `${serverId} (no longer a server of this Dokploy)`;
  return `${server.name} (${server.serverId}, ${server.ipAddress})`;
}

function sizeLine(cpus: string | null, memory: string | null): string {
  if (!cpus && !memory) return "unknown";
  return `${cpus ?? "?"} CPU, ${memory ? memoryText(memory) : "?"} memory`;
}

/** Compose's `4096m` / `6g` as people read it. */
function memoryText(limit: string): string {
  const m = /^(\d+)([mg])$/i.exec(limit);
  if (!m) return limit;
  const mib = Number(m[1]) * (m[2].toLowerCase() === "g" ? 1024 : 1);
  return mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}
