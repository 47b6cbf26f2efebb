/**
 * An in-repo Dokploy that speaks the real wire protocol (see dokploy-api.md) and
 * "deploys" a compose machine by starting a real sshd on 127.0.0.1.
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
import { createApiHandler, type RecordedRequest } from "./api.ts";
import { machineSpec } from "./compose_spec.ts";
import { composeSummary } from "./procedures/projects.ts";
import type { Ctx } from "./context.ts";
import { DeployQueues } from "./deploy_queue.ts";
import { FaultController, type FaultRule } from "./faults.ts";
import { serveHttp } from "./http_server.ts";
import { HostRuntime } from "./machine/host_runtime.ts";
import type { ContainerState, MachineRuntime } from "./machine/runtime.ts";
import { type DokployVersion, profileFor } from "./profiles.ts";
import { newId, now, ORGANIZATION_ID, Store } from "./store.ts";

export type { DokployVersion, FaultRule, RecordedRequest };
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
  /** Remote servers listed by server.all/one (their machines still run locally). */
  servers?: { serverId: string; name: string; ipAddress: string }[];
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
    container: { state: ContainerState | "none"; exitCode: number | null };
    /** Volume names on disk for this app, e.g. "<appName>_home". */
    volumes: string[];
  }[];
  /** Every volume directory on disk (absolute paths), including orphaned ones. */
  volumeDirs: string[];
  /** Live machine process groups. */
  machineProcesses: number;
}

export interface Emulator {
  /** e.g. "http://127.0.0.1:41234" (no trailing slash). */
  url: string;
  token: string;
  dataDir: string;
  faults: FaultController;
  snapshot(): EmulatorSnapshot;
  requests: RecordedRequest[];
  /** Resolves when the deploy queues are empty. */
  waitIdle(timeoutMs?: number): Promise<void>;
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
  for (const s of opts.servers ?? []) {
    store.servers.set(s.serverId, {
      ...s,
      description: null,
      port: 22,
      username: "root",
      appName: `server-${s.name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`,
      enableDockerCleanup: false,
      createdAt: now(),
      organizationId: ORGANIZATION_ID,
      serverStatus: "active",
      serverType: "deploy",
      command: "",
      sshKeyId: null,
      buildsConcurrency: 1,
      metricsConfig: {},
    });
  }
  const runtime: MachineRuntime = new HostRuntime({ dataDir });
  const queues = new DeployQueues();
  const shutdown = new AbortController();
  const ctx: Ctx = {
    store,
    profile,
    runtime,
    queues,
    dataDir,
    deployDelayMs: opts.deployDelayMs ?? 300,
    shutdown: shutdown.signal,
  };
  const faults = new FaultController();
  const requests: RecordedRequest[] = [];
  const server = serveHttp(
    { hostname: "127.0.0.1", port: opts.port ?? 0 },
    createApiHandler({
      ctx,
      token,
      faults,
      requests,
      latencyMs: opts.latencyMs ?? 0,
      log: opts.log,
    }),
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      shutdown.abort();
      await server.close();
      await queues.waitIdle(15_000).catch(() => {});
      await runtime.close();
      if (ownDataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    })();

  return {
    url: `http://127.0.0.1:${server.port}`,
    token,
    dataDir,
    faults,
    requests,
    snapshot: () => snapshot(ctx),
    waitIdle: (timeoutMs) => queues.waitIdle(timeoutMs),
    close,
  };
}

function snapshot({ store, runtime }: Ctx): EmulatorSnapshot {
  return {
    projects: [...store.projects.values()].map((p) => ({
      projectId: p.projectId,
      name: p.name,
      environments: store.environmentsOf(p.projectId)
        .map(({ environmentId, name }) => ({ environmentId, name })),
    })),
    composes: [...store.composes.values()].map((c) => {
      const container = runtime.container(c.appName);
      const parsed = machineSpec(c.composeFile, c.env, c.appName);
      return {
        ...composeSummary(c),
        publishedPort: container?.publishedPort ?? (parsed.ok ? parsed.spec.publishedPort : null),
        container: { state: container?.state ?? "none", exitCode: container?.exitCode ?? null },
        volumes: runtime.volumesOf(c.appName),
      };
    }),
    volumeDirs: runtime.volumeDirs(),
    machineProcesses: runtime.liveProcesses(),
  };
}
