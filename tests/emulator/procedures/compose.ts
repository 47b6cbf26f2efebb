/** compose.*: the machine's Dokploy service (dokploy-api.md §8). */
import { composeApp, filesWritten, removeComposeFiles } from "../compose_files.ts";
import type { Ctx, Input, Procedures } from "../context.ts";
import { queueDeploy } from "../deploy_job.ts";
import { ApiError, notFound } from "../errors.ts";
import { REMOTE_EXIT_1, sshFailure } from "../servers.ts";
import type { ComposeRow } from "../store.ts";
import { newId, now, randomSuffix } from "../store.ts";
import { findEnvironment, findProject } from "./projects.ts";

export function findCompose(ctx: Ctx, composeId: unknown): ComposeRow {
  const c = ctx.store.composes.get(String(composeId));
  if (!c) throw notFound("Compose");
  return c;
}

/** Dokploy's buildAppName: "<slug>-<6 random [a-z0-9]>". */
function buildAppName(prefix: string, appName?: string): string {
  const base = appName === undefined
    ? `${prefix}-${randomSuffix(5)}-${randomSuffix(7)}`
    : appName.trim().replace(/ /g, "-").toLowerCase();
  return `${base}-${randomSuffix(6)}`;
}

/** Columns the API may change through compose.update (appName and serverId are fixed). */
const UPDATABLE = new Set([
  "name",
  "description",
  "env",
  "composeFile",
  "refreshToken",
  "sourceType",
  "composeType",
  "repository",
  "owner",
  "branch",
  "autoDeploy",
  "customGitUrl",
  "customGitBranch",
  "command",
  "enableSubmodules",
  "composePath",
  "suffix",
  "randomize",
  "isolatedDeployment",
  "triggerType",
  "watchPaths",
  "createEnvFile",
]);

/** A local docker command's failure as Node's exec reports it. */
function dockerFailure(command: string, message: string): string {
  return `Command failed: docker ${command}\n${message}`;
}

export const composeProcedures: Procedures = {
  "compose.create": (ctx, input: Input) => {
    let environmentId: string | null = null;
    let projectId: string | undefined;
    if (ctx.profile.environments) {
      environmentId = findEnvironment(ctx, input.environmentId).environmentId;
    } else {
      projectId = findProject(ctx, input.projectId).projectId;
    }
    const serverId = (input.serverId as string | null | undefined) ?? null;
    if (serverId !== null && !ctx.store.servers.has(serverId)) throw notFound("Server");
    const appName = buildAppName("compose", input.appName as string | undefined);
    if (ctx.store.appNameTaken(appName)) {
      throw new ApiError("CONFLICT", "Service with this 'AppName' already exists");
    }
    const row: ComposeRow = {
      composeId: newId(),
      name: String(input.name),
      appName,
      description: (input.description as string | null | undefined) ?? null,
      env: null,
      composeFile: (input.composeFile as string | undefined) ?? "",
      refreshToken: newId(),
      sourceType: (input.sourceType as string | undefined) ?? "github",
      composeType: (input.composeType as string | undefined) ?? "docker-compose",
      repository: null,
      owner: null,
      branch: null,
      autoDeploy: true,
      customGitUrl: null,
      customGitBranch: null,
      command: "",
      enableSubmodules: false,
      composePath: "./docker-compose.yml",
      suffix: "",
      randomize: false,
      isolatedDeployment: false,
      triggerType: "push",
      composeStatus: "idle",
      environmentId,
      ...(projectId ? { projectId } : {}),
      createdAt: now(),
      watchPaths: [],
      githubId: null,
      gitlabId: null,
      bitbucketId: null,
      giteaId: null,
      serverId,
      createEnvFile: true,
    };
    ctx.store.composes.set(row.composeId, row);
    return row;
  },

  "compose.one": (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    const env = c.environmentId ? ctx.store.environments.get(c.environmentId) : undefined;
    const project = ctx.store.projects.get(env?.projectId ?? c.projectId ?? "");
    return {
      ...c,
      ...(ctx.profile.environments
        ? { environment: env ? { ...env, project } : null }
        : { project }),
      deployments: ctx.store.deploymentsOf(c.composeId),
      mounts: [],
      domains: ctx.store.domainsOf(c.composeId),
      server: c.serverId ? ctx.store.servers.get(c.serverId) ?? null : null,
    };
  },

  "compose.update": (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    for (const [key, value] of Object.entries(input)) {
      if (UPDATABLE.has(key)) (c as unknown as Record<string, unknown>)[key] = value;
    }
    return c;
  },

  "compose.deploy": (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    queueDeploy(ctx, c, "deploy", input.title as string | undefined, input.description as string);
    return { success: true, message: "Deployment queued", composeId: c.composeId };
  },

  "compose.redeploy": (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    queueDeploy(ctx, c, "redeploy", input.title as string | undefined, input.description as string);
    return { success: true, message: "Redeployment queued", composeId: c.composeId };
  },

  // Synchronous `docker compose up -d` on the files of the last deploy. On a remote server
  // it runs over SSH (`cd <code> && docker compose …`), where a failure is only its exit code.
  "compose.start": async (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    const app = composeApp(ctx, c);
    const failed = (message: string): never => {
      c.composeStatus = "idle";
      throw new ApiError("INTERNAL_SERVER_ERROR", message);
    };
    const unreachable = sshFailure(ctx.store, c.serverId);
    if (unreachable) failed(unreachable);
    // Never deployed: the compose directory (the command's cwd) does not exist.
    if (!filesWritten(app)) failed(c.serverId ? REMOTE_EXIT_1 : "spawn /bin/sh ENOENT");
    try {
      await ctx.runtime.start(app);
    } catch (e) {
      failed(
        c.serverId ? REMOTE_EXIT_1 : dockerFailure(
          `compose -p ${c.appName} -f docker-compose.yml up -d`,
          (e as Error).message,
        ),
      );
    }
    c.composeStatus = "done";
    return true;
  },

  "compose.stop": async (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    const app = composeApp(ctx, c);
    const failed = (message: string): never => {
      c.composeStatus = "error";
      throw new ApiError("INTERNAL_SERVER_ERROR", message);
    };
    const unreachable = sshFailure(ctx.store, c.serverId);
    if (unreachable) failed(unreachable);
    // Never deployed: the compose directory does not exist, so the shell cannot start.
    if (!filesWritten(app)) failed(c.serverId ? REMOTE_EXIT_1 : "spawn /bin/sh ENOENT");
    try {
      await ctx.runtime.stop(app);
    } catch (e) {
      failed(
        c.serverId
          ? REMOTE_EXIT_1
          : dockerFailure(`compose -p ${c.appName} stop`, (e as Error).message),
      );
    }
    c.composeStatus = "idle";
    return true;
  },

  // The row goes first; then `docker compose down`, the files and the logs, every error
  // swallowed. On an unreachable server none of that happens: its containers, volumes,
  // files and logs stay there (an orphan that keeps running).
  "compose.delete": async (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    const app = composeApp(ctx, c);
    ctx.store.composes.delete(c.composeId);
    for (const d of ctx.store.deploymentsOf(c.composeId)) {
      ctx.store.deployments.delete(d.deploymentId);
    }
    // Its domains go too (FK cascade); their labels went with its containers.
    for (const d of ctx.store.domainsOf(c.composeId)) ctx.store.domains.delete(d.domainId);
    // Its volume backups go too (FK cascade); their scheduled jobs do not.
    for (const vb of [...ctx.store.volumeBackups.values()]) {
      if (vb.composeId === c.composeId) ctx.store.removeVolumeBackup(vb.volumeBackupId);
    }
    if (!sshFailure(ctx.store, c.serverId)) {
      await ctx.runtime.remove(app, { volumes: input.deleteVolumes === true }).catch(() => {});
      await removeComposeFiles(app);
      await Deno.remove(`${ctx.dataDir}/logs/${c.appName}`, { recursive: true }).catch(() => {});
    }
    return c;
  },

  // v0.29+: the container's log, found by name among running containers (as Dokploy does).
  // `search` is Dokploy's `| grep -iF '<search>'` after the tail: no matching line makes
  // grep exit 1 with nothing on stdout, and the call fails. On a remote server the
  // commands run over SSH.
  "compose.readLogs": async (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    const unreachable = sshFailure(ctx.store, c.serverId);
    if (unreachable) throw new ApiError("INTERNAL_SERVER_ERROR", unreachable);
    const container = String(input.containerId);
    const tail = Number(input.tail ?? 100);
    const text = await ctx.runtime.logs(container, tail);
    if (text === null) {
      throw new ApiError(
        "INTERNAL_SERVER_ERROR",
        `No container or service found for: ${container}`,
      );
    }
    const search = input.search === undefined ? "" : String(input.search);
    if (!search) return text;
    const needle = search.toLowerCase();
    const lines = text.split("\n").filter((l) => l && l.toLowerCase().includes(needle));
    if (!lines.length) {
      throw new ApiError(
        "INTERNAL_SERVER_ERROR",
        c.serverId
          ? REMOTE_EXIT_1
          : `Command failed: docker container logs --timestamps --tail ${tail}  ${container} ` +
            `2>&1 | grep -iF '${search}'\n`,
      );
    }
    return lines.map((l) => `${l}\n`).join("");
  },

  // v0.29+: ILIKE '%x%' on each given field, q on name/appName/description.
  "compose.search": (ctx, input: Input) => {
    const like = (value: string | null, needle: unknown) =>
      needle === undefined || (value ?? "").toLowerCase().includes(String(needle).toLowerCase());
    const projectOf = (c: ComposeRow) =>
      c.environmentId ? ctx.store.environments.get(c.environmentId)?.projectId : c.projectId;
    const q = input.q as string | undefined;
    const matches = [...ctx.store.composes.values()].reverse().filter((c) =>
      like(c.name, input.name) && like(c.appName, input.appName) &&
      like(c.description, input.description) &&
      (q === undefined || like(c.name, q) || like(c.appName, q) || like(c.description, q)) &&
      (input.projectId === undefined || projectOf(c) === input.projectId) &&
      (input.environmentId === undefined || c.environmentId === input.environmentId)
    );
    const offset = Number(input.offset ?? 0);
    const limit = Number(input.limit ?? 20);
    return {
      items: matches.slice(offset, offset + limit).map((c) => ({
        composeId: c.composeId,
        name: c.name,
        appName: c.appName,
        description: c.description,
        environmentId: c.environmentId,
        composeStatus: c.composeStatus,
        sourceType: c.sourceType,
        createdAt: c.createdAt,
      })),
      total: matches.length,
    };
  },
};
