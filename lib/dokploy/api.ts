/**
 * Typed Dokploy procedures the provider uses (dokploy-api.md §4, §8). "Not found"
 * becomes `null` here, so callers branch on a value instead of catching.
 */
import { z } from "zod";
import { DokployError } from "../errors.ts";
import { type Identity, identityFromMember, type IdentityStore } from "../identity/identity.ts";
import { type DokployClient, isNotFound } from "./client.ts";

const ComposeStatus = z.enum(["idle", "running", "done", "error"]);
export type ComposeStatus = z.infer<typeof ComposeStatus>;

const ComposeSummary = z.looseObject({
  composeId: z.string(),
  name: z.string(),
  appName: z.string(),
  description: z.string().nullish(),
  composeStatus: ComposeStatus.catch("idle"),
  serverId: z.string().nullish(),
  createdAt: z.string().nullish(),
});
export type ComposeSummary = z.infer<typeof ComposeSummary>;

const Deployment = z.looseObject({
  deploymentId: z.string(),
  status: z.string().nullish(),
  title: z.string().nullish(),
  errorMessage: z.string().nullish(),
  createdAt: z.string().nullish(),
});
export type Deployment = z.infer<typeof Deployment>;

/** A domain row (domain.*, and compose.one's `domains`); see domains.ts. */
export const Domain = z.looseObject({
  domainId: z.string(),
  host: z.string(),
  port: z.number().nullish(),
  https: z.boolean().nullish(),
  path: z.string().nullish(),
  serviceName: z.string().nullish(),
  composeId: z.string().nullish(),
  certificateType: z.string().nullish(),
  middlewares: z.array(z.string()).nullish(),
  uniqueConfigKey: z.number().nullish(),
  createdAt: z.string().nullish(),
});
export type Domain = z.infer<typeof Domain>;

/** compose.one's row; compose.create answers the row without the relations. */
const Compose = ComposeSummary.extend({
  composeFile: z.string().nullish(),
  env: z.string().nullish(),
  environmentId: z.string().nullish(),
  /** compose.one only, in no promised order. */
  deployments: z.array(Deployment).nullish(),
  /** compose.one only: the environment with the project it belongs to. */
  environment: z.looseObject({ projectId: z.string().nullish() }).nullish(),
  /** compose.one only: its domains (preview URLs). */
  domains: z.array(Domain).nullish(),
});
export type Compose = z.infer<typeof Compose>;

const Environment = z.looseObject({
  environmentId: z.string(),
  name: z.string(),
  isDefault: z.boolean().nullish(),
  compose: z.array(ComposeSummary).nullish(),
});
export type Environment = z.infer<typeof Environment>;

const Project = z.looseObject({
  projectId: z.string(),
  name: z.string(),
  description: z.string().nullish(),
  environments: z.array(Environment).nullish(),
});
export type Project = z.infer<typeof Project>;

/** project.all nests services without appName/description: read only the project. */
const ProjectSummary = z.looseObject({
  projectId: z.string(),
  name: z.string(),
  createdAt: z.string().nullish(),
});
export type ProjectSummary = z.infer<typeof ProjectSummary>;

const Container = z.looseObject({
  containerId: z.string(),
  name: z.string(),
  state: z.string(),
  status: z.string().nullish(),
});
export type Container = z.infer<typeof Container>;

const Server = z.looseObject({
  serverId: z.string(),
  name: z.string(),
  ipAddress: z.string(),
  serverStatus: z.string().nullish(),
  /** "deploy" runs services; "build" only builds images (never a machine's home). */
  serverType: z.string().nullish(),
  /** Dokploy monitoring: server.port/token reach the server's metrics endpoint. */
  metricsConfig: z.looseObject({
    server: z.looseObject({
      port: z.number().nullish(),
      token: z.string().nullish(),
    }).nullish(),
  }).nullish().catch(null),
});
export type Server = z.infer<typeof Server>;

export interface CreateComposeInput {
  name: string;
  appName: string;
  description: string;
  environmentId: string;
  composeFile: string;
  serverId: string | null;
}

/** A synchronous docker compose call on the server can take a while. */
const SLOW_CALL_MS = 180_000;

export class DokployApi {
  /** `identityStore` keeps who the key is between runs (lib/identity); without it, per run. */
  constructor(readonly client: DokployClient, private readonly identityStore?: IdentityStore) {}

  #identity?: Promise<Identity>;

  /**
   * The Dokploy user behind the key: from the identity file, else one `user.get` (then
   * kept). `fresh` asks Dokploy whatever is kept: for decisions that rest on the role.
   */
  identity(opts: { fresh?: boolean } = {}): Promise<Identity> {
    if (opts.fresh) return this.#identity = this.#askIdentity();
    return this.#identity ??=
      this.identityStore?.read().then((kept) => kept ?? this.#askIdentity()) ?? this.#askIdentity();
  }

  async #askIdentity(): Promise<Identity> {
    const row = await this.client.query<unknown>("user.get");
    const me = identityFromMember(row);
    if (!me) {
      throw new DokployError(
        "unexpected answer from Dokploy user.get (no role or user id); is this a supported Dokploy version?",
        "user.get",
        200,
      );
    }
    await this.identityStore?.write(me).catch(() => {}); // an unwritable folder: asked next time
    return me;
  }

  async version(): Promise<string> {
    const v = await this.client.query<unknown>("settings.getDokployVersion");
    return parse(z.string(), v, "settings.getDokployVersion");
  }

  async projects(): Promise<ProjectSummary[]> {
    const all = await this.client.query("project.all");
    return parse(z.array(ProjectSummary), all, "project.all");
  }

  async project(projectId: string): Promise<Project | null> {
    return await nullIfMissing(async () =>
      parse(Project, await this.client.query("project.one", { projectId }), "project.one")
    );
  }

  /** v0.25+: answers `{project, environment}` with the default environment. */
  async createProject(name: string, description: string): Promise<Project> {
    const res = await this.client.mutate<unknown>("project.create", { name, description });
    const shape = z.object({ project: Project, environment: Environment });
    const parsed = shape.safeParse(res);
    if (!parsed.success) {
      throw new DokployError(
        "project.create answered without an environment; Dokploy v0.25.0 or newer is required",
        "project.create",
        200,
      );
    }
    return { ...parsed.data.project, environments: [parsed.data.environment] };
  }

  /** Removes a project row (only ever one we just made and found empty). */
  async removeProject(projectId: string): Promise<void> {
    await this.client.mutate("project.remove", { projectId });
  }

  async composeOne(composeId: string): Promise<Compose | null> {
    return await nullIfMissing(async () =>
      parse(Compose, await this.client.query("compose.one", { composeId }), "compose.one")
    );
  }

  /** Never retried here: a lost answer may hide a created service (see create.ts). */
  async createCompose(input: CreateComposeInput): Promise<Compose> {
    const res = await this.client.mutate("compose.create", {
      ...input,
      composeType: "docker-compose",
      sourceType: "raw",
    });
    return parse(Compose, res, "compose.create");
  }

  async updateCompose(
    composeId: string,
    patch: { composeFile?: string; env?: string; description?: string },
  ): Promise<void> {
    await this.client.mutate("compose.update", { composeId, ...patch }, { idempotent: true });
  }

  /** Repeating it at worst queues a second deploy of the same spec: safe to retry. */
  async deployCompose(composeId: string, title: string): Promise<void> {
    await this.client.mutate("compose.deploy", { composeId, title }, { idempotent: true });
  }

  async startCompose(composeId: string): Promise<void> {
    await this.client.mutate("compose.start", { composeId }, {
      idempotent: true,
      timeoutMs: SLOW_CALL_MS,
    });
  }

  async stopCompose(composeId: string): Promise<void> {
    await this.client.mutate("compose.stop", { composeId }, {
      idempotent: true,
      timeoutMs: SLOW_CALL_MS,
    });
  }

  /** Deletes the service; false when it was already gone. */
  async deleteCompose(composeId: string, deleteVolumes: boolean): Promise<boolean> {
    try {
      await this.client.mutate("compose.delete", { composeId, deleteVolumes }, {
        idempotent: true,
        timeoutMs: SLOW_CALL_MS,
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async containers(appName: string, serverId: string | null): Promise<Container[]> {
    const res = await this.client.query<unknown>("docker.getContainersByAppNameMatch", {
      appName,
      appType: "docker-compose",
      serverId: serverId ?? undefined,
    });
    // Dokploy answers [] (or nothing) when Docker fails: never proof of absence alone.
    return res === undefined
      ? []
      : parse(z.array(Container), res, "docker.getContainersByAppNameMatch");
  }

  /**
   * The last `tail` lines of a compose container's log (`docker container logs
   * --timestamps`), found by container name. Dokploy v0.29+; it fails when the container
   * is not running.
   */
  async containerLog(
    composeId: string,
    container: string,
    tail: number,
    search?: string,
  ): Promise<string> {
    // One try: a 500 here means "no running container", which a retry rarely changes.
    const res = await this.client.query<unknown>(
      "compose.readLogs",
      { composeId, containerId: container, tail, ...(search ? { search } : {}) },
      { idempotent: false, timeoutMs: 10_000 },
    );
    return typeof res === "string" ? res : "";
  }

  async deployments(composeId: string): Promise<Deployment[]> {
    const res = await this.client.query("deployment.allByCompose", { composeId });
    return parse(z.array(Deployment), res ?? [], "deployment.allByCompose");
  }

  async deploymentLog(deploymentId: string, tail = 20): Promise<string> {
    const res = await this.client.query<unknown>("deployment.readLogs", { deploymentId, tail });
    return typeof res === "string" ? res : "";
  }

  async servers(): Promise<Server[]> {
    return parse(z.array(Server), (await this.client.query("server.all")) ?? [], "server.all");
  }

  /**
   * Dokploy monitoring's latest data point for a server (`server.getServerMetrics`, which
   * fetches `url?limit=1` with the token); throws when the endpoint does not answer.
   */
  async serverMetrics(url: string, token: string): Promise<unknown[]> {
    const res = await this.client.query<unknown>(
      "server.getServerMetrics",
      { url, token, dataPoints: "1" },
      { idempotent: false, timeoutMs: 10_000 },
    );
    return Array.isArray(res) ? res : [];
  }

  /** `server.validate`: runs checks over SSH on the server; throws when Dokploy cannot reach it. */
  async validateServer(serverId: string): Promise<void> {
    await this.client.query<unknown>("server.validate", { serverId }, {
      idempotent: false,
      timeoutMs: 30_000,
    });
  }

  async server(serverId: string): Promise<Server | null> {
    return await nullIfMissing(async () =>
      parse(Server, await this.client.query("server.one", { serverId }), "server.one")
    );
  }
}

/** A Dokploy answer checked against what we rely on; a mismatch names the field. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, procedure: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new DokployError(
    `unexpected answer from Dokploy ${procedure} (${
      issue.path.join(".") || "body"
    }: ${issue.message}); is this a supported Dokploy version?`,
    procedure,
    200,
  );
}

async function nullIfMissing<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
