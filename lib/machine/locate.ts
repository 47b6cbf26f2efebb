/**
 * Finds a machine: through MACHINE_FOLDER/state.json, or — when that is lost — by
 * the id marker of the services in our project (never a global name search).
 */
import type { ProviderConfig } from "../config.ts";
import type { Compose, ComposeSummary, DokployApi, Project } from "../dokploy/api.ts";
import { ProviderError } from "../errors.ts";
import type { MachineDeps } from "./deps.ts";
import { type MachineMarker, parseMarker } from "./naming.ts";
import { type MachineState, readState } from "./state.ts";

/** Where a machine stands: local state and/or its Dokploy service. */
export interface Located {
  state: MachineState | null;
  compose: Compose | null;
}

export async function locateMachine(d: MachineDeps): Promise<Located> {
  const state = await readState(d.machine.machineFolder);
  if (state) return { state, compose: await d.api.composeOne(state.composeId) };
  const found = await findByMarker(d);
  return { state: null, compose: found ? await d.api.composeOne(found.composeId) : null };
}

/** Finds the machine by the id marker in our project only. */
async function findByMarker(d: MachineDeps): Promise<{ composeId: string } | null> {
  const all = await markedComposes(d.api, d.config.projectName);
  return all.find((m) => m.marker.machineId === d.machine.machineId)?.compose ?? null;
}

export interface MarkedCompose {
  compose: ComposeSummary;
  marker: MachineMarker;
}

/** Every service carrying a machine marker in the projects named `projectName`. */
export async function markedComposes(
  api: DokployApi,
  projectName: string,
): Promise<MarkedCompose[]> {
  const out: MarkedCompose[] = [];
  for (const p of await api.projects()) {
    if (p.name !== projectName) continue;
    for (const compose of composesOf(await api.project(p.projectId))) {
      const marker = parseMarker(compose.description);
      if (marker) out.push({ compose, marker });
    }
  }
  return out;
}

function composesOf(project: Project | null) {
  return (project?.environments ?? []).flatMap((e) => e.compose ?? []);
}

/** The address DevPod dials: SSH_HOST, else the remote server's IP, else the URL's host. */
export async function resolveSshHost(api: DokployApi, config: ProviderConfig): Promise<string> {
  if (config.sshHost) return config.sshHost;
  if (config.serverId) {
    const server = await api.server(config.serverId);
    if (!server) {
      throw new ProviderError(
        `DOKPLOY_SERVER_ID "${config.serverId}" is not a server of this Dokploy; pick one from 'devpod-provider-dokploy doctor' or leave it empty`,
      );
    }
    return server.ipAddress;
  }
  return new URL(config.serverUrl).hostname;
}
