/**
 * An in-repo Dokploy that speaks the real wire protocol (see dokploy-api.md) and
 * "deploys" a compose machine by starting a real sshd on 127.0.0.1 (on a remote server's
 * own loopback address, 127.0.0.N, for a service on that server).
 *
 * @example
 * ```ts
 * const emu = await startEmulator({ deployDelayMs: 100 });
 * try {
 *   const res = await fetch(`${emu.url}/api/settings.getDokployVersion`, {
 *     headers: { "x-api-key": emu.token },
 *   });
 * } finally {
 *   await emu.close();
 * }
 * ```
 */
import { type NewUser, Team } from "./team.ts";
import { createApiHandler, type RecordedRequest } from "./api.ts";
import { machineSpec } from "./compose_spec.ts";
import { composeSummary } from "./procedures/projects.ts";
import type { Ctx } from "./context.ts";
import { DeployQueues } from "./deploy_queue.ts";
import { FaultController, type FaultRule } from "./faults.ts";
import { type HttpHandler, type HttpServer, serveHttp } from "./http_server.ts";
import type { ContainerNames } from "./machine/compose_command.ts";
import { DockerRuntime } from "./machine/docker_runtime.ts";
import { HostRuntime } from "./machine/host_runtime.ts";
import type { Engine } from "../engine/engine.ts";
import type { MachineRuntime, NetworkView } from "./machine/runtime.ts";
import { type DokployVersion, profileFor } from "./profiles.ts";
import { sleepUnlessAborted } from "./sleep.ts";
import {
  addServers,
  changeServer,
  serverAddress,
  type ServerChange,
  type ServerOption,
  setDokployUrl,
} from "./servers.ts";
import { newId, Store } from "./store.ts";
import { type BackupJobView, BackupSchedule } from "./backups/schedule.ts";
import { DokployProcess } from "./dokploy_exec.ts";
import { scheduleRow } from "./procedures/backups.ts";

export type {
  BackupJobView,
  DokployVersion,
  FaultRule,
  NetworkView,
  RecordedRequest,
  ServerChange,
  ServerOption,
};
export { FaultController };

export interface EmulatorOptions {
  /** The only accepted API key; default random. */
  token?: string;
  /** Version profile; default "v0.30.2". */
  version?: DokployVersion;
  /** HTTP port on 127.0.0.1; 0 (default) = random. */
  port?: number;
  /** Machine dirs and volumes; default a fresh temp dir, removed on close. */
  dataDir?: string;
  /** Simulated image pull / start time per deploy; default 300. */
  deployDelayMs?: number;
  /** Added to every API response; default 0. */
  latencyMs?: number;
  /**
   * Remote servers (server.all/one). Each one's machines listen on its own loopback
   * address (127.0.0.2, 127.0.0.3, … unless `ipAddress` gives one); see servers.ts.
   */
  servers?: ServerOption[];
  /**
   * Run machines on this real Docker engine (Dokploy's own compose command lines) instead
   * of as host processes. See tests/engine/.
   */
  engine?: Engine;
  /**
   * On that engine, the container names compose gives (default v2's, as on a Dokploy
   * server; `v1`: `<project>_<service>_1`, as Debian's docker-compose names them).
   */
  containerNames?: ContainerNames;
  /** Request log sink; default silent. */
  log?: (line: string) => void;
}

export interface EmulatorSnapshot {
  projects: {
    projectId: string;
    name: string;
    environments: { environmentId: string; name: string }[];
  }[];
  composes: {
    composeId: string;
    name: string;
    appName: string;
    description: string | null;
    composeStatus: string;
    serverId: string | null;
    publishedPort: number | null;
    /**
     * Where the machine's sshd listens: its server's ipAddress (127.0.0.1 on the Dokploy
     * host), from the container when there is one, else the server's.
     */
    publishedAddress: string;
    /**
     * docker's {{.State}} of the machine container (of the first service when the app has
     * no `machine`, e.g. an image cache), "none" when there is none.
     */
    container: { state: string; exitCode: number | null };
    /** Volume names on disk for this app, e.g. "<appName>_home". */
    volumes: string[];
  }[];
  /** Every volume directory on disk (absolute paths), including orphaned ones. */
  volumeDirs: string[];
  /**
   * Networks deploys created that still exist, orphans included, sorted by name
   * (`dokploy-network`, which every server has, is not listed).
   */
  networks: NetworkView[];
  /**
   * `machine` containers running now (host runtime: process groups; real engine:
   * containers); other services, such as an image cache, do not count.
   */
  machineProcesses: number;
  /**
   * node-schedule's volume backup jobs in this Dokploy lifetime (a deleted row's job
   * stays until a restart; a bad expression's job never fires).
   */
  backupJobs: BackupJobView[];
  /** Domain rows (domain.*): what a deploy turns into Traefik labels. */
  domains: {
    domainId: string;
    composeId: string | null;
    host: string;
    serviceName: string | null;
    port: number | null;
  }[];
  /** Each compose's stored file, by composeId (what compose.one answers). */
  composeFiles: Record<string, string>;
  /** The remote servers and their faults (setServer). */
  servers: {
    serverId: string;
    name: string;
    ipAddress: string;
    serverStatus: "active" | "inactive";
    reachable: boolean;
    machinesDown: boolean;
  }[];
}

export interface Emulator {
  /** e.g. "http://127.0.0.1:41234" (no trailing slash). */
  url: string;
  /** The organisation owner's API key. */
  token: string;
  /** Another user of the organisation and an API key of theirs (team.ts). */
  addUser(user: NewUser): { userId: string; token: string; email: string };
  /** Gives a member access to projects, environments, services (what an admin does in the UI). */
  grant(
    userId: string,
    access: { projects?: string[]; environments?: string[]; services?: string[] },
  ): void;
  dataDir: string;
  faults: FaultController;
  /** Which machine runtime this emulator deploys to. */
  runtime: "host" | "docker";
  snapshot(): Promise<EmulatorSnapshot>;
  requests: RecordedRequest[];
  /** Resolves when the deploy queues are empty. */
  waitIdle(timeoutMs?: number): Promise<void>;
  /**
   * Simulates a Dokploy restart: the listener closes (new connections are refused,
   * requests in flight lose their connection unanswered), every queued and running
   * deploy is lost the way Dokploy loses it (see deploy_job.ts), the store (Postgres)
   * and the machines (Docker) are kept, and after `downMs` (default 3000) it listens
   * again on the same port. Resolves then; a second call while down joins the first.
   */
  restart(opts?: { downMs?: number }): Promise<void>;
  /**
   * Moves every service's and deployment's timestamps `ms` into the past: a deploy lost
   * long ago, without the wait (the provider tells lost deploys by their age).
   */
  backdate(ms: number): void;
  /**
   * Changes a remote server mid-test: `status` (serverStatus only), `reachable` (false:
   * Dokploy's SSH to it is refused, see README "Servers"), `machinesDown` (true: its
   * machines freeze and stop answering; false: they resume as they were), `metrics`.
   * Throws for an unknown serverId.
   */
  setServer(serverId: string, change: ServerChange): Promise<void>;
  /** Stops the HTTP server and every machine, and waits for their processes to exit. */
  close(): Promise<void>;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const profile = profileFor(opts.version);
  const token = opts.token ?? newId(32);
  const ownDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "dokploy-emulator-" });
  await Deno.mkdir(dataDir, { recursive: true });

  const store = new Store();
  addServers(store, opts.servers ?? []);
  const runtime: MachineRuntime = opts.engine
    ? new DockerRuntime(opts.engine, { dataDir, containerNames: opts.containerNames })
    : new HostRuntime({ dataDir });
  const queues = new DeployQueues();
  const shutdown = new AbortController();
  const ctx: Ctx = {
    store,
    profile,
    runtime,
    queues,
    dataDir,
    // The real engine takes its own time; the host runtime pretends.
    deployDelayMs: opts.deployDelayMs ?? (opts.engine ? 0 : 300),
    shutdown: shutdown.signal,
    dokploy: new DokployProcess(),
    backupJobs: new BackupSchedule(),
  };
  const faults = new FaultController();
  const requests: RecordedRequest[] = [];
  const team = new Team(token);
  const handler = createApiHandler({
    ctx,
    team,
    faults,
    requests,
    latencyMs: opts.latencyMs ?? 0,
    log: opts.log,
  });
  let server = serveHttp({ hostname: "127.0.0.1", port: opts.port ?? 0 }, handler);
  const port = server.port;
  setDokployUrl(store, `http://127.0.0.1:${port}`);
  /** Servers of earlier lifetimes, still letting their dropped requests unwind. */
  const stopped: Promise<void>[] = [];

  let restarting: Promise<void> | undefined;
  const restart = ({ downMs = 3000 } = {}) =>
    restarting ??= (async () => {
      // close() shuts the listener and drops connections synchronously; handlers that
      // are still at work see `closed` and answer nothing.
      stopped.push(server.close());
      queues.abandon();
      // Its shell commands (backups, restores) and its timers die with it.
      ctx.dokploy.die();
      ctx.backupJobs.dropAll();
      await sleepUnlessAborted(downMs, shutdown.signal);
      if (shutdown.signal.aborted) return;
      server = await listenAgain(port, handler);
      // initVolumeBackupsCronJobs: every enabled row gets its job again.
      for (const vb of store.volumeBackups.values()) if (vb.enabled === true) scheduleRow(ctx, vb);
    })().finally(() => restarting = undefined);

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      shutdown.abort();
      await restarting?.catch(() => {});
      await server.close();
      await Promise.allSettled(stopped);
      ctx.backupJobs.dropAll();
      ctx.dokploy.die();
      await ctx.dokploy.settle(15_000);
      // Lost deploys too: a `docker compose up` they started must end before the runtime.
      await queues.settle(15_000);
      await runtime.close();
      if (ownDataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    })();

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    addUser: (user) => team.add(user),
    grant: (userId, access) => team.grant(userId, access),
    dataDir,
    faults,
    requests,
    runtime: runtime.kind,
    snapshot: () => snapshot(ctx),
    waitIdle: (timeoutMs) => queues.waitIdle(timeoutMs),
    restart,
    backdate: (ms) => backdate(store, ms),
    setServer: async (serverId, change) => {
      const health = changeServer(store, serverId, change);
      if (change.machinesDown !== undefined && change.machinesDown !== health.machinesDown) {
        health.machinesDown = change.machinesDown;
        await runtime.setMachinesDown(serverId, change.machinesDown);
      }
    },
    close,
  };
}

function backdate(store: Store, ms: number): void {
  const earlier = (iso: string) => new Date(Date.parse(iso) - ms).toISOString();
  for (const c of store.composes.values()) c.createdAt = earlier(c.createdAt);
  for (const d of store.deployments.values()) {
    d.createdAt = earlier(d.createdAt);
    if (d.startedAt) d.startedAt = earlier(d.startedAt);
    if (d.finishedAt) d.finishedAt = earlier(d.finishedAt);
  }
}

/** The same port again; the old socket may linger a moment, so a few tries (bounded). */
async function listenAgain(port: number, handler: HttpHandler): Promise<HttpServer> {
  for (let attempt = 1;; attempt++) {
    try {
      return serveHttp({ hostname: "127.0.0.1", port }, handler);
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse) || attempt >= 50) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function snapshot({ store, runtime, backupJobs }: Ctx): Promise<EmulatorSnapshot> {
  const composes = await Promise.all([...store.composes.values()].map(async (c) => {
    const view = await runtime.view(c.appName);
    return {
      ...composeSummary(c),
      publishedPort: view.publishedPort ?? declaredPort(c.composeFile, c.env, c.appName),
      publishedAddress: view.publishedAddress ?? serverAddress(store, c.serverId),
      container: { state: view.state, exitCode: view.exitCode },
      volumes: view.volumes,
    };
  }));
  return {
    projects: [...store.projects.values()].map((p) => ({
      projectId: p.projectId,
      name: p.name,
      environments: store.environmentsOf(p.projectId)
        .map(({ environmentId, name }) => ({ environmentId, name })),
    })),
    composes,
    volumeDirs: await runtime.volumeDirs(),
    networks: await runtime.networks(),
    machineProcesses: await runtime.liveMachines(),
    backupJobs: backupJobs.list(),
    domains: [...store.domains.values()].map((
      { domainId, composeId, host, serviceName, port },
    ) => ({
      domainId,
      composeId,
      host,
      serviceName,
      port,
    })),
    composeFiles: Object.fromEntries(
      [...store.composes.values()].map((c) => [c.composeId, c.composeFile]),
    ),
    servers: [...store.servers.values()].map((s) => {
      const health = store.serverHealth.get(s.serverId);
      return {
        serverId: s.serverId,
        name: s.name,
        ipAddress: s.ipAddress,
        serverStatus: s.serverStatus,
        reachable: health?.reachable ?? true,
        machinesDown: health?.machinesDown ?? false,
      };
    }),
  };
}

/** The SSH port a compose file asks for, before any container exists. */
function declaredPort(composeFile: string, env: string | null, appName: string): number | null {
  const parsed = machineSpec(composeFile, env, appName);
  return parsed.ok ? parsed.spec.publishedPort : null;
}
