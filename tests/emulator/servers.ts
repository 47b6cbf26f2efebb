/**
 * Remote servers (dokploy-api.md §4.7): their rows, the loopback address each one's
 * machines listen on, and what Dokploy sees when it cannot SSH to one.
 *
 * Every server gets its own address in 127.0.0.0/8 (127.0.0.2, 127.0.0.3, … unless one is
 * given): the whole /8 is loopback on Linux, so a machine on server S really listens on
 * S's `ipAddress`, and two servers can publish the same port at once.
 */
import type { Ctx } from "./context.ts";
import type { MetricsConfig, ServerHealth, ServerMetrics, Store } from "./store.ts";
import { newId, ORGANIZATION_ID, randomSuffix } from "./store.ts";

/** One remote server of `EmulatorOptions.servers`. */
export interface ServerOption {
  serverId: string;
  name: string;
  /** Default: the next free 127.0.0.N, N from 2. Machines can run only on 127.0.0.0/8. */
  ipAddress?: string;
  /** Default "active". Dokploy still deploys to an inactive server when asked. */
  serverStatus?: "active" | "inactive";
  /** Default "deploy". */
  serverType?: "deploy" | "build";
  /**
   * Monitoring set up on the server (metricsConfig gets a port and a token, and
   * `server.getServerMetrics` answers); absent: Dokploy's column default (token "").
   */
  metrics?: ServerMetricsOption;
  /** Default true; false: Dokploy's SSH connections to it are refused from the start. */
  reachable?: boolean;
}

export interface ServerMetricsOption {
  cpuCores: number;
  memTotalGiB: number;
  /** CPU use in percent; default 3.1. */
  cpuPercent?: number;
  /** Memory use in percent; default 12.5. */
  memUsedPercent?: number;
}

/** A change of a server mid-test (`Emulator.setServer`). */
export interface ServerChange {
  /** serverStatus in server.all/one; nothing else changes. */
  status?: "active" | "inactive";
  /** false: Dokploy cannot SSH to the server (its machines keep running). */
  reachable?: boolean;
  /** true: the server's machines freeze (no longer answer SSH); false: they resume. */
  machinesDown?: boolean;
  /** New monitoring figures (monitoring must have been set up with `metrics`). */
  metrics?: Partial<ServerMetricsOption>;
}

/** The Dokploy host itself (a service with serverId null). */
export const DOKPLOY_HOST_ADDRESS = "127.0.0.1";
/** Dokploy's default monitoring port (metricsConfig.server.port). */
export const METRICS_PORT = 4500;
/** An ExecError of Dokploy's execAsyncRemote for a command that exited 1. */
export const REMOTE_EXIT_1 = "Remote command failed with exit code 1";

/** Adds the servers to the store; throws on a duplicate serverId or a bad option. */
export function addServers(store: Store, options: ServerOption[]): void {
  const taken = new Set(options.flatMap((o) => o.ipAddress ? [o.ipAddress] : []));
  let next = 2;
  const nextAddress = () => {
    while (taken.has(`127.0.0.${next}`)) next++;
    if (next > 254) throw new Error("emulator: out of 127.0.0.N addresses for servers");
    const ip = `127.0.0.${next}`;
    taken.add(ip);
    return ip;
  };
  const base = Date.now();
  for (const [i, o] of options.entries()) {
    if (!o.serverId || store.servers.has(o.serverId)) {
      throw new Error(`emulator: duplicate or empty serverId ${JSON.stringify(o.serverId)}`);
    }
    if (o.metrics && !(o.metrics.cpuCores > 0 && o.metrics.memTotalGiB > 0)) {
      throw new Error(`emulator: server ${o.serverId}: metrics need cpuCores and memTotalGiB > 0`);
    }
    const sshKeyId = newId();
    // server.all sorts by createdAt, newest first: the first option is the newest.
    const createdAt = new Date(base - i * 1000).toISOString();
    store.sshKeys.set(sshKeyId, {
      sshKeyId,
      privateKey:
        "-----BEGIN OPENSSH PRIVATE KEY-----\nemulator\n-----END OPENSSH PRIVATE KEY-----\n",
      publicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorKeyFor${
        o.serverId.slice(0, 8)
      } dokploy`,
      name: `${o.name} key`,
      description: null,
      createdAt,
      lastUsedAt: null,
      organizationId: ORGANIZATION_ID,
    });
    store.servers.set(o.serverId, {
      serverId: o.serverId,
      name: o.name,
      description: null,
      ipAddress: o.ipAddress ?? nextAddress(),
      port: 22,
      username: "root",
      appName: `server-${o.name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${randomSuffix(6)}`,
      enableDockerCleanup: false,
      buildsConcurrency: 1,
      createdAt,
      organizationId: ORGANIZATION_ID,
      serverStatus: o.serverStatus ?? "active",
      serverType: o.serverType ?? "deploy",
      command: "",
      sshKeyId,
      metricsConfig: metricsConfig(o.metrics ? newId(32) : null),
    });
    store.serverHealth.set(o.serverId, {
      reachable: o.reachable ?? true,
      machinesDown: false,
      metrics: o.metrics ? withDefaults(o.metrics) : null,
      bootedAt: Date.now() - 3_600_000,
    });
  }
}

/** Once the emulator listens: the monitoring agents' callback is Dokploy's URL. */
export function setDokployUrl(store: Store, url: string): void {
  for (const s of store.servers.values()) {
    if (s.metricsConfig.server.token) {
      s.metricsConfig.server.urlCallback = `${url}/api/trpc/notification.receiveNotification`;
    }
  }
}

/**
 * Dokploy's metricsConfig: with monitoring set up (a token), what its "Setup monitoring"
 * form saves; without, the column default (port 4500, token "").
 */
function metricsConfig(token: string | null): MetricsConfig {
  return {
    server: {
      type: "Remote",
      refreshRate: 60,
      port: METRICS_PORT,
      token: token ?? "",
      urlCallback: "",
      retentionDays: 2,
      cronJob: token ? "0 0 * * *" : "",
      thresholds: { cpu: 0, memory: 0 },
    },
    containers: { refreshRate: 60, services: { include: [], exclude: [] } },
  };
}

function withDefaults(m: ServerMetricsOption): ServerMetrics {
  return {
    cpuCores: m.cpuCores,
    memTotalGiB: m.memTotalGiB,
    cpuPercent: m.cpuPercent ?? 3.1,
    memUsedPercent: m.memUsedPercent ?? 12.5,
  };
}

/** Applies a ServerChange's row and monitoring parts (the machines are the runtime's). */
export function changeServer(store: Store, serverId: string, change: ServerChange): ServerHealth {
  const row = store.servers.get(serverId);
  const health = store.serverHealth.get(serverId);
  if (!row || !health) throw new Error(`emulator: no server ${serverId}`);
  if (change.status) row.serverStatus = change.status;
  if (change.reachable !== undefined) health.reachable = change.reachable;
  if (change.metrics) {
    if (!health.metrics) {
      throw new Error(`emulator: server ${serverId} has no monitoring (start it with metrics)`);
    }
    health.metrics = withDefaults({ ...health.metrics, ...change.metrics });
  }
  return health;
}

/** Where a service's machines listen: its server's ipAddress, or the Dokploy host's. */
export function serverAddress(store: Store, serverId: string | null | undefined): string {
  if (!serverId) return DOKPLOY_HOST_ADDRESS;
  return store.servers.get(serverId)?.ipAddress ?? DOKPLOY_HOST_ADDRESS;
}

/**
 * The error of Dokploy's execAsyncRemote (ssh2) when it cannot reach the server, or null
 * when it can (and for the Dokploy host, where commands run locally).
 */
export function sshFailure(store: Store, serverId: string | null | undefined): string | null {
  if (!serverId) return null;
  const server = store.servers.get(serverId);
  if (!server || store.serverHealth.get(serverId)?.reachable !== false) return null;
  return `SSH connection error: connect ECONNREFUSED ${server.ipAddress}:${server.port}`;
}

/** What `server.validate`'s script prints on a set-up Dokploy server (v0.30.2). */
export function validation() {
  return {
    docker: { version: "28.0.0", enabled: true },
    rclone: { version: "1.60", enabled: true },
    nixpacks: { version: "1.39.0", enabled: true },
    buildpacks: { version: "0.35.0", enabled: true },
    railpack: { version: "0.2.2", enabled: true },
    isDokployNetworkInstalled: true,
    isSwarmInstalled: true,
    isMainDirectoryInstalled: true,
    privilegeMode: "root",
    dockerGroupMember: false,
  };
}

/** The outcome of Dokploy's `fetch(url?limit=N, {Authorization: Bearer token})`. */
export type MetricsFetch =
  | { ok: true; points: MetricsPoint[] | null }
  | { ok: false; status: number; statusText: string }
  | { ok: false; error: string };

/** One data point as the monitoring agent (apps/monitoring, SystemMetrics) serves it. */
export interface MetricsPoint {
  cpu: string;
  cpuModel: string;
  cpuCores: number;
  cpuPhysicalCores: number;
  cpuSpeed: number;
  os: string;
  distro: string;
  kernel: string;
  arch: string;
  memUsed: string;
  memUsedGB: string;
  memTotal: string;
  uptime: number;
  diskUsed: string;
  totalDisk: string;
  networkIn: string;
  networkOut: string;
  timestamp: string;
}

/**
 * The monitoring agent of the server at the URL's host, emulated without HTTP: nothing
 * answers (fetch fails) unless it is a reachable server with monitoring on its metrics
 * port; then the agent's auth (Bearer token) and routes (`GET /metrics?limit=N`).
 */
export function fetchMetrics(ctx: Ctx, url: URL, token: string): MetricsFetch {
  const server = [...ctx.store.servers.values()].find((s) =>
    s.ipAddress === url.hostname && s.metricsConfig.server.token !== ""
  );
  const health = server && ctx.store.serverHealth.get(server.serverId);
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  if (
    !server || !health?.metrics || !health.reachable || url.protocol !== "http:" ||
    port !== server.metricsConfig.server.port
  ) {
    return { ok: false, error: "fetch failed" };
  }
  if (url.pathname === "/health") return { ok: true, points: null };
  // fetch trims header values: "Bearer " + "" arrives as "Bearer", which the agent rejects.
  if (token === "" || token !== server.metricsConfig.server.token) {
    return { ok: false, status: 401, statusText: "Unauthorized" };
  }
  if (url.pathname !== "/metrics") return { ok: false, status: 404, statusText: "Not Found" };
  const limit = url.searchParams.get("limit") ?? "50";
  const refreshMs = server.metricsConfig.server.refreshRate * 1000;
  const recorded = 1 + Math.floor((Date.now() - health.bootedAt) / refreshMs);
  let n = limit === "all" ? recorded : Number.parseInt(limit, 10);
  if (!/^[+-]?\d+$/.test(limit) && limit !== "all") n = 50; // Go's strconv.Atoi failed
  if (n < 0) n = recorded; // SQLite: a negative LIMIT is no limit
  n = Math.min(n, recorded);
  // Go marshals an empty slice that was never appended to as null.
  if (n === 0) return { ok: true, points: null };
  const now = Date.now();
  const points = Array.from({ length: n }, (_, i) => {
    const at = now - (n - 1 - i) * refreshMs;
    return metricsPoint(health.metrics!, at, Math.floor((at - health.bootedAt) / 1000));
  });
  return { ok: true, points };
}

function metricsPoint(m: ServerMetrics, at: number, uptime: number): MetricsPoint {
  const f = (x: number) => x.toFixed(2);
  return {
    cpu: f(m.cpuPercent),
    cpuModel: "emulated",
    cpuCores: m.cpuCores,
    cpuPhysicalCores: m.cpuCores,
    cpuSpeed: 2400,
    os: "Debian GNU/Linux 12 (bookworm)",
    distro: "Debian GNU/Linux 12 (bookworm)",
    kernel: "6.1.0-28-amd64",
    arch: "x86_64",
    memUsed: f(m.memUsedPercent),
    memUsedGB: f((m.memTotalGiB * m.memUsedPercent) / 100),
    memTotal: f(m.memTotalGiB),
    uptime,
    diskUsed: f(23.4),
    totalDisk: f(80),
    networkIn: f(1234.56),
    networkOut: f(789.01),
    timestamp: new Date(at).toISOString(),
  };
}
