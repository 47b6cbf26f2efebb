/** project.* and environment.* (environments exist from v0.25 on). */
import type { Ctx, Input, Procedures } from "../context.ts";
import { ApiError, notFound } from "../errors.ts";
import type { ComposeRow, EnvironmentRow, ProjectRow } from "../store.ts";
import { newId, now, ORGANIZATION_ID } from "../store.ts";

/** The compose columns project.one / environment.one list per service. */
export function composeSummary(c: ComposeRow) {
  return {
    composeId: c.composeId,
    name: c.name,
    appName: c.appName,
    description: c.description,
    composeStatus: c.composeStatus,
    serverId: c.serverId,
    createdAt: c.createdAt,
  };
}

const EMPTY_SERVICES = {
  applications: [],
  libsql: [],
  mariadb: [],
  mongo: [],
  mysql: [],
  postgres: [],
  redis: [],
};

function environmentView(ctx: Ctx, e: EnvironmentRow) {
  return {
    ...e,
    ...EMPTY_SERVICES,
    compose: ctx.store.composesOfEnvironment(e.environmentId).map(composeSummary),
  };
}

function projectView(ctx: Ctx, p: ProjectRow) {
  if (!ctx.profile.environments) {
    return {
      ...p,
      ...EMPTY_SERVICES,
      compose: ctx.store.composesOfProject(p.projectId).map(composeSummary),
    };
  }
  return {
    ...p,
    environments: ctx.store.environmentsOf(p.projectId).map((e) => environmentView(ctx, e)),
    projectTags: [],
  };
}

export function findProject(ctx: Ctx, projectId: unknown): ProjectRow {
  const p = ctx.store.projects.get(String(projectId));
  if (!p) throw notFound("Project");
  return p;
}

export function findEnvironment(ctx: Ctx, environmentId: unknown): EnvironmentRow {
  const e = ctx.store.environments.get(String(environmentId));
  if (!e) throw notFound("Environment");
  return e;
}

function newEnvironment(
  projectId: string,
  name: string,
  description: string | null,
  isDefault: boolean,
) {
  const env: EnvironmentRow = {
    environmentId: newId(),
    name,
    description,
    createdAt: now(),
    env: "",
    projectId,
    isDefault,
  };
  return env;
}

export const projectProcedures: Procedures = {
  "project.all": (ctx) =>
    [...ctx.store.projects.values()].reverse().map((p) => {
      if (!ctx.profile.environments) {
        const compose = ctx.store.composesOfProject(p.projectId)
          .map(({ composeId, name, composeStatus }) => ({ composeId, name, composeStatus }));
        return { ...p, ...EMPTY_SERVICES, compose };
      }
      return {
        ...p,
        environments: ctx.store.environmentsOf(p.projectId).map((e) => ({
          name: e.name,
          environmentId: e.environmentId,
          isDefault: e.isDefault,
          ...EMPTY_SERVICES,
          compose: ctx.store.composesOfEnvironment(e.environmentId)
            .map(({ composeId, name, composeStatus }) => ({ composeId, name, composeStatus })),
        })),
        projectTags: [],
      };
    }),

  "project.one": (ctx, input: Input) => projectView(ctx, findProject(ctx, input.projectId)),

  "project.create": (ctx, input: Input) => {
    const project: ProjectRow = {
      projectId: newId(),
      name: String(input.name),
      description: (input.description as string | null | undefined) ?? null,
      createdAt: now(),
      organizationId: ORGANIZATION_ID,
      env: (input.env as string | undefined) ?? "",
    };
    ctx.store.projects.set(project.projectId, project);
    if (!ctx.profile.environments) return project;
    const environment = newEnvironment(project.projectId, "production", null, true);
    ctx.store.environments.set(environment.environmentId, environment);
    return { project, environment };
  },

  // Deletes rows only (cascade); running machines stay, as on the real server.
  "project.remove": (ctx, input: Input) => {
    const project = findProject(ctx, input.projectId);
    for (const c of ctx.store.composesOfProject(project.projectId)) {
      ctx.store.composes.delete(c.composeId);
      for (const d of ctx.store.deploymentsOf(c.composeId)) {
        ctx.store.deployments.delete(d.deploymentId);
      }
    }
    for (const e of ctx.store.environmentsOf(project.projectId)) {
      ctx.store.environments.delete(e.environmentId);
    }
    ctx.store.projects.delete(project.projectId);
    return project;
  },

  "environment.byProjectId": (ctx, input: Input) => {
    const project = ctx.store.projects.get(String(input.projectId));
    if (!project) return [];
    return ctx.store.environmentsOf(project.projectId).map((e) => ({
      ...environmentView(ctx, e),
      project,
    }));
  },

  "environment.create": (ctx, input: Input) => {
    if (input.name === "production") {
      throw new ApiError(
        "BAD_REQUEST",
        "You cannot create a environment with the name 'production'",
      );
    }
    const project = findProject(ctx, input.projectId);
    const env = newEnvironment(
      project.projectId,
      String(input.name),
      (input.description as string | undefined) ?? null,
      false,
    );
    ctx.store.environments.set(env.environmentId, env);
    return env;
  },

  "environment.one": (ctx, input: Input) => {
    const env = findEnvironment(ctx, input.environmentId);
    return { ...environmentView(ctx, env), project: ctx.store.projects.get(env.projectId) ?? null };
  },
};
