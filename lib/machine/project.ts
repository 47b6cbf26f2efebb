/**
 * The Dokploy project that holds the machines, read once per verb run: its default
 * environment, every machine in it (by marker) and so every SSH port they claim. Each
 * API call costs a real server 0.2-0.5 s, so a run re-reads it only where a concurrent
 * run may have changed it (the port check after creating a service).
 */
import type { CacheFailure } from "../cache/failure.ts";
import { parseCacheMarker } from "../cache/spec.ts";
import type { ComposeSummary, DokployApi, Project } from "../dokploy/api.ts";
import { ProviderError, StateError } from "../errors.ts";
import type { MachineDeps } from "./deps.ts";
import { type MachineMarker, parseMarker } from "./naming.ts";
import { resolveProjectName } from "../identity/project_name.ts";

export interface MarkedCompose {
  compose: ComposeSummary;
  marker: MachineMarker;
}

export interface ProjectSnapshot {
  /** The projects named DOKPLOY_PROJECT_NAME, oldest first: normally one (none before the first create). */
  projects: Project[];
  /** Every service in them that carries a machine marker. */
  machines: MarkedCompose[];
  /** Every shared image cache in them (see lib/cache), oldest first. */
  caches: MarkedCache[];
}

export interface MarkedCache {
  compose: ComposeSummary;
  /** The server it serves (from its marker); null is the Dokploy host. */
  serverId: string | null;
  /** Its last deploy failed, as its description records (lib/cache/failure.ts). */
  failure: CacheFailure | null;
  /** Its compose has the prebuild registry (lib/prebuild/spec.ts). */
  prebuilds: boolean;
  /** Its compose has the agent cache (lib/agent/spec.ts). */
  agents: boolean;
}

/** project.all finds the projects by name (it lists no markers); project.one reads each. */
export async function readProjectSnapshot(
  api: DokployApi,
  projectName: string,
): Promise<ProjectSnapshot> {
  return await readProjects(api, await projectIdsNamed(api, projectName));
}

/** DOKPLOY_PROJECT_NAME with {user} filled in (lib/identity/project_name.ts). */
export { resolveProjectName } from "../identity/project_name.ts";

/** The same projects read again (project.one each): what concurrent runs did meanwhile. */
export async function refreshProjectSnapshot(
  api: DokployApi,
  snapshot: ProjectSnapshot,
): Promise<ProjectSnapshot> {
  return await readProjects(api, snapshot.projects.map((p) => p.projectId));
}

/** Ids of the projects with this name, oldest first (then by id): the first is canonical. */
async function projectIdsNamed(api: DokployApi, template: string): Promise<string[]> {
  const [projects, projectName] = await Promise.all([
    api.projects(),
    resolveProjectName(api, template),
  ]);
  return projects
    .filter((p) => p.name === projectName)
    .sort((a, b) =>
      String(a.createdAt ?? "").localeCompare(String(b.createdAt ?? "")) ||
      a.projectId.localeCompare(b.projectId)
    )
    .map((p) => p.projectId);
}

async function readProjects(api: DokployApi, projectIds: string[]): Promise<ProjectSnapshot> {
  // A project removed meanwhile (a parallel run's extra one) reads as null: skipped.
  const projects = (await Promise.all(projectIds.map((id) => api.project(id))))
    .filter((p): p is Project => p !== null);
  const composes = projects.flatMap((p) => (p.environments ?? []).flatMap((e) => e.compose ?? []));
  return {
    projects,
    machines: composes.flatMap((compose) => {
      const marker = parseMarker(compose.description);
      return marker ? [{ compose, marker }] : [];
    }),
    caches: composes.flatMap((compose) => {
      const marker = parseCacheMarker(compose.description);
      return marker ? [{ compose, ...marker }] : [];
    }).sort((a, b) => byAge(a.compose, b.compose)),
  };
}

/** Oldest first, then by id: the order parallel runs agree on. */
export function byAge(
  a: Pick<ComposeSummary, "createdAt" | "composeId">,
  b: Pick<ComposeSummary, "createdAt" | "composeId">,
): number {
  return String(a.createdAt ?? "").localeCompare(String(b.createdAt ?? "")) ||
    a.composeId.localeCompare(b.composeId);
}

export interface MachineProject {
  projectId: string;
  environmentId: string;
  /** The snapshot the project was taken from (a new project's when it was just created). */
  snapshot: ProjectSnapshot;
}

/**
 * The project (from the snapshot, or created when missing) and its default environment.
 * Parallel first creates may each make one: all converge on the oldest and drop their
 * own extra.
 */
export async function ensureProject(
  d: MachineDeps,
  snapshot: ProjectSnapshot,
): Promise<MachineProject> {
  if (snapshot.projects.length === 0) snapshot = await createProject(d);
  const project = snapshot.projects[0];
  if (!project) {
    throw new StateError(`Dokploy project "${d.config.projectName}" vanished; run again`);
  }
  const envs = project.environments ?? [];
  const env = envs.find((e) => e.isDefault) ?? envs.find((e) => e.name === "production") ?? envs[0];
  if (!env) {
    throw new ProviderError(
      `Dokploy project "${project.name}" has no environment; add one in Dokploy or pick another DOKPLOY_PROJECT_NAME`,
    );
  }
  return { projectId: project.projectId, environmentId: env.environmentId, snapshot };
}

/** Creates the project; the snapshot of the oldest one of that name, ours or a parallel run's. */
async function createProject(d: MachineDeps): Promise<ProjectSnapshot> {
  const name = await resolveProjectName(d.api, d.config.projectName);
  d.log.info(`creating Dokploy project "${name}"`);
  const mine = await d.api.createProject(
    name,
    "DevPod workspaces (managed by devpod-provider-dokploy)",
  );
  const canonical = (await projectIdsNamed(d.api, d.config.projectName))[0] ?? mine.projectId;
  // Ours: the create's answer is the whole (empty) project, no need to read it.
  if (canonical === mine.projectId) return { projects: [mine], machines: [], caches: [] };
  await d.api.removeProject(mine.projectId).catch(() => {});
  return await readProjects(d.api, [canonical]);
}
