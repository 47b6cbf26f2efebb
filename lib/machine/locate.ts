/**
 * Finds a machine: through MACHINE_FOLDER/state.json, or — when that is lost — by
 * the id marker of the services in our project (never a global name search).
 */
import type { Compose, Project } from "../dokploy/api.ts";
import type { MachineDeps } from "./deps.ts";
import { parseMarker } from "./naming.ts";
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
  for (const p of await d.api.projects()) {
    if (p.name !== d.config.projectName) continue;
    const full = await d.api.project(p.projectId);
    for (const c of composesOf(full)) {
      if (parseMarker(c.description)?.machineId === d.machine.machineId) return c;
    }
  }
  return null;
}

export function composesOf(project: Project | null) {
  return (project?.environments ?? []).flatMap((e) => e.compose ?? []);
}
