/**
 * What a member's key may do and see, as v0.30.2 decides it (`services/permission.ts`,
 * `routers/project.ts` all/one, `routers/compose.ts`, `routers/docker.ts`). Owners and
 * admins pass every check. A refusal is the 401 Dokploy answers; a refused
 * `project.create` comes back as its 400 (the router wraps every error).
 */
import type { Ctx, Input } from "./context.ts";
import { ApiError } from "./errors.ts";
import { isPrivileged, type MemberRow } from "./team.ts";

/** The static `member` role (lib/access-control.ts) and the legacy `can…` overrides. */
function memberMay(m: MemberRow, resource: string, action: string): boolean {
  const role: Record<string, string[]> = {
    service: ["read"],
    environment: ["read"],
    deployment: ["read", "create", "cancel"],
    envVars: ["read", "write"],
    volumeBackup: ["read", "create", "update", "delete", "restore"],
    domain: ["read", "create", "delete"],
    logs: ["read"],
  };
  if (role[resource]?.includes(action)) return true;
  const legacy: Record<string, Record<string, boolean>> = {
    project: { create: m.canCreateProjects, delete: m.canDeleteProjects },
    service: { create: m.canCreateServices, delete: m.canDeleteServices },
    docker: { read: m.canAccessToDocker },
  };
  return legacy[resource]?.[action] === true;
}

function checkPermission(m: MemberRow, resource: string, action: string): void {
  if (isPrivileged(m) || memberMay(m, resource, action)) return;
  throw new ApiError("UNAUTHORIZED", `Unauthorized to access resource "${resource}"`);
}

const noProject = () => new ApiError("UNAUTHORIZED", "You don't have access to this project");
const noService = () => new ApiError("UNAUTHORIZED", "You don't have access to this service");

/** What each compose procedure asks of `checkServicePermissionAndAccess` (routers/compose.ts). */
const COMPOSE_PERMISSION: Record<string, [string, string]> = {
  "compose.one": ["service", "read"],
  "compose.delete": ["service", "delete"],
  "compose.deploy": ["deployment", "create"],
  "compose.redeploy": ["deployment", "create"],
  "compose.stop": ["deployment", "create"],
  "compose.start": ["deployment", "create"],
  "compose.saveEnvironment": ["envVars", "write"],
};

/** Refuses a call the caller may not make, before the handler runs. */
export function checkAccess(ctx: Ctx, m: MemberRow, procedure: string, input: Input): void {
  if (isPrivileged(m)) return;
  const composeId = typeof input.composeId === "string" ? input.composeId : null;
  if (procedure === "project.create") {
    try {
      checkPermission(m, "project", "create");
    } catch (e) {
      throw new ApiError("BAD_REQUEST", `Error creating the project: ${(e as Error).message}`);
    }
  } else if (procedure === "project.one") {
    if (!m.accessedProjects.includes(String(input.projectId))) throw noProject();
  } else if (procedure === "compose.create") {
    checkPermission(m, "service", "create");
    const env = ctx.store.environments.get(String(input.environmentId));
    if (env && !m.accessedProjects.includes(env.projectId)) throw noProject();
  } else if (procedure.startsWith("compose.") && composeId !== null) {
    const [resource, action] = COMPOSE_PERMISSION[procedure] ?? ["service", "create"];
    checkPermission(m, resource, action);
    if (!m.accessedServices.includes(composeId)) throw noService();
  } else if (procedure === "docker.removeContainer") {
    checkPermission(m, "docker", "read");
  }
}

/** What Dokploy records after a member's create: it may see what it made (addNew…). */
export function recordCreated(m: MemberRow, procedure: string, result: unknown): void {
  const row = result as Record<string, Record<string, string> | string> | null;
  if (procedure === "project.create" && row && typeof row.project === "object") {
    m.accessedProjects.push(row.project.projectId);
    if (typeof row.environment === "object") {
      m.accessedEnvironments.push(row.environment.environmentId);
    }
  } else if (procedure === "compose.create" && row && typeof row.composeId === "string") {
    m.accessedServices.push(row.composeId);
  }
}

type View = Record<string, unknown> & { environments?: View[]; compose?: { composeId: string }[] };

/**
 * A member's view of project.all (its projects, environments it was given, its services)
 * and project.one (the project whole, its services filtered).
 */
export function filterView(m: MemberRow, procedure: string, result: unknown): unknown {
  if (isPrivileged(m)) return result;
  const services = (v: View): View => ({
    ...v,
    ...(v.compose
      ? { compose: v.compose.filter((c) => m.accessedServices.includes(c.composeId)) }
      : {}),
  });
  if (procedure === "project.all") {
    return (result as View[])
      .filter((p) => m.accessedProjects.includes(String(p.projectId)))
      .map((p) => ({
        ...p,
        environments: (p.environments ?? [])
          .filter((e) => m.accessedEnvironments.includes(String(e.environmentId)))
          .map(services),
      }));
  }
  if (procedure === "project.one") {
    const p = result as View;
    return { ...p, environments: (p.environments ?? []).map(services) };
  }
  return result;
}

/** `user.get`: the caller's member row with its user. */
export function userGet(m: MemberRow): MemberRow {
  return structuredClone(m);
}
