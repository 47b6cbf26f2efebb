/** The emulator's in-memory "database": Dokploy rows as the API returns them. */

export interface ProjectRow {
  projectId: string;
  name: string;
  description: string | null;
  createdAt: string;
  organizationId: string;
  env: string;
}

export interface EnvironmentRow {
  environmentId: string;
  name: string;
  description: string | null;
  createdAt: string;
  env: string;
  projectId: string;
  isDefault: boolean;
}

export type ComposeStatus = "idle" | "running" | "done" | "error";

export interface ComposeRow {
  composeId: string;
  name: string;
  appName: string;
  description: string | null;
  env: string | null;
  composeFile: string;
  refreshToken: string | null;
  sourceType: string;
  composeType: string;
  repository: string | null;
  owner: string | null;
  branch: string | null;
  autoDeploy: boolean | null;
  customGitUrl: string | null;
  customGitBranch: string | null;
  command: string;
  enableSubmodules: boolean;
  composePath: string;
  suffix: string;
  randomize: boolean;
  isolatedDeployment: boolean;
  triggerType: string | null;
  composeStatus: ComposeStatus;
  /** v0.25+ link; null in the environment-less profiles. */
  environmentId: string | null;
  /** Only in the environment-less profiles (≤ v0.24), as the old schema had it. */
  projectId?: string;
  createdAt: string;
  watchPaths: string[] | null;
  githubId: string | null;
  gitlabId: string | null;
  bitbucketId: string | null;
  giteaId: string | null;
  serverId: string | null;
  createEnvFile: boolean;
}

export type DeploymentStatus = "running" | "done" | "error" | "cancelled";

export interface DeploymentRow {
  deploymentId: string;
  title: string;
  description: string | null;
  status: DeploymentStatus;
  logPath: string;
  pid: string | null;
  applicationId: string | null;
  /** null for a volume backup's run (it links to the backup, not the service). */
  composeId: string | null;
  serverId: string | null;
  isPreviewDeployment: boolean;
  previewDeploymentId: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  errorMessage: string | null;
  scheduleId: string | null;
  backupId: string | null;
  rollbackId: string | null;
  volumeBackupId: string | null;
}

/** Dokploy's `metricsConfig` column (schema/server.ts), as server.all/one return it. */
export interface MetricsConfig {
  server: {
    type: "Dokploy" | "Remote";
    refreshRate: number;
    port: number;
    token: string;
    urlCallback: string;
    retentionDays: number;
    cronJob: string;
    thresholds: { cpu: number; memory: number };
  };
  containers: {
    refreshRate: number;
    services: { include: string[]; exclude: string[] };
  };
}

/** The columns of Dokploy's `server` table (v0.30.2). */
export interface ServerRow {
  serverId: string;
  name: string;
  description: string | null;
  ipAddress: string;
  port: number;
  username: string;
  appName: string;
  enableDockerCleanup: boolean;
  buildsConcurrency: number;
  createdAt: string;
  organizationId: string;
  serverStatus: "active" | "inactive";
  serverType: "deploy" | "build";
  command: string;
  sshKeyId: string | null;
  metricsConfig: MetricsConfig;
}

/** The `ssh-key` row a server uses (server.one returns it with the private key blanked). */
export interface SshKeyRow {
  sshKeyId: string;
  privateKey: string;
  publicKey: string;
  name: string;
  description: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  organizationId: string;
}

/**
 * What the emulator knows about a remote server beyond its row: whether Dokploy can SSH
 * to it, whether its machines answer, and what its monitoring agent reports.
 */
export interface ServerHealth {
  /** false: every SSH connection from Dokploy to it is refused (ECONNREFUSED). */
  reachable: boolean;
  /** true: its machine processes are frozen (they no longer answer SSH). */
  machinesDown: boolean;
  /** The monitoring agent's figures; null when monitoring is not set up on it. */
  metrics: ServerMetrics | null;
  /** Epoch ms the server "booted" (uptime, and how many data points it has recorded). */
  bootedAt: number;
}

/** What a server's monitoring agent measures (the emulator's fixed figures). */
export interface ServerMetrics {
  cpuCores: number;
  memTotalGiB: number;
  /** CPU use in percent; default 3.1. */
  cpuPercent: number;
  /** Memory use in percent; default 12.5. */
  memUsedPercent: number;
}

/** The columns of Dokploy's `destination` table (an S3 bucket for backups). */
export interface DestinationRow {
  destinationId: string;
  name: string;
  provider: string | null;
  accessKey: string;
  secretAccessKey: string;
  bucket: string;
  region: string;
  endpoint: string;
  additionalFlags: string[] | null;
  organizationId: string;
  createdAt: string;
}

/** The columns of Dokploy's `volume_backup` table. */
export interface VolumeBackupRow {
  volumeBackupId: string;
  name: string;
  volumeName: string;
  prefix: string;
  serviceType: string;
  /** Names its local work dir `<base>/volume-backups/<appName>` and its log files. */
  appName: string;
  serviceName: string | null;
  turnOff: boolean;
  cronExpression: string;
  keepLatestCount: number | null;
  enabled: boolean | null;
  applicationId: string | null;
  postgresId: string | null;
  mariadbId: string | null;
  mongoId: string | null;
  mysqlId: string | null;
  redisId: string | null;
  libsqlId: string | null;
  composeId: string | null;
  createdAt: string;
  destinationId: string;
}

/** What the last deploy wrote to disk (docker-compose.yml + .env); `start` reuses it. */
export interface WrittenFiles {
  composeFile: string;
  env: string | null;
}

export const ORGANIZATION_ID = "emulator-org-0000000001";

const ID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/** A nanoid-like id: 21 url-safe random characters. */
export function newId(length = 21): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => ID_ALPHABET[b & 63]).join("");
}

/** `length` random characters of [a-z0-9], as Dokploy's appName suffix. */
export function randomSuffix(length = 6): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export function now(): string {
  return new Date().toISOString();
}

/** A domain row (schema/domain.ts); for compose, only a row until the next deploy. */
export interface DomainRow {
  domainId: string;
  host: string;
  https: boolean;
  port: number | null;
  path: string | null;
  serviceName: string | null;
  domainType: string | null;
  /** A serial: routers are named `<appName>-<uniqueConfigKey>-<entrypoint>`. */
  uniqueConfigKey: number;
  createdAt: string;
  composeId: string | null;
  applicationId: string | null;
  previewDeploymentId: string | null;
  customCertResolver: string | null;
  customEntrypoint: string | null;
  certificateType: string;
  internalPath: string | null;
  stripPath: boolean;
  middlewares: string[] | null;
  enabled: boolean;
}

export class Store {
  projects = new Map<string, ProjectRow>();
  environments = new Map<string, EnvironmentRow>();
  composes = new Map<string, ComposeRow>();
  deployments = new Map<string, DeploymentRow>();
  /** Deployment log text, line by line. */
  deploymentLogs = new Map<string, string[]>();
  servers = new Map<string, ServerRow>();
  /** Remote servers' state outside the database (see ServerHealth), by serverId. */
  serverHealth = new Map<string, ServerHealth>();
  sshKeys = new Map<string, SshKeyRow>();
  written = new Map<string, WrittenFiles>();
  destinations = new Map<string, DestinationRow>();
  volumeBackups = new Map<string, VolumeBackupRow>();
  domains = new Map<string, DomainRow>();
  /** The next domain's uniqueConfigKey (a serial column). */
  nextDomainKey = 1;
  /** The Dokploy host's IP as its settings know it (domain.generateDomain). */
  dokployHostIp = "127.0.0.1";

  domainsOf(composeId: string): DomainRow[] {
    return [...this.domains.values()].filter((d) => d.composeId === composeId);
  }

  environmentsOf(projectId: string): EnvironmentRow[] {
    return [...this.environments.values()].filter((e) => e.projectId === projectId);
  }

  composesOfEnvironment(environmentId: string): ComposeRow[] {
    return [...this.composes.values()].filter((c) => c.environmentId === environmentId);
  }

  composesOfProject(projectId: string): ComposeRow[] {
    const envIds = new Set(this.environmentsOf(projectId).map((e) => e.environmentId));
    return [...this.composes.values()].filter((c) =>
      c.projectId === projectId || (c.environmentId !== null && envIds.has(c.environmentId))
    );
  }

  /** Newest first (the map keeps insertion order, which is creation order). */
  deploymentsOf(composeId: string): DeploymentRow[] {
    return [...this.deployments.values()].filter((d) => d.composeId === composeId).reverse();
  }

  /** A volume backup row goes, its runs with it (FK cascade). */
  removeVolumeBackup(volumeBackupId: string): void {
    this.volumeBackups.delete(volumeBackupId);
    for (const d of this.deploymentsOfVolumeBackup(volumeBackupId)) {
      this.deployments.delete(d.deploymentId);
    }
  }

  /** A volume backup's runs, newest first. */
  deploymentsOfVolumeBackup(volumeBackupId: string): DeploymentRow[] {
    return [...this.deployments.values()].filter((d) => d.volumeBackupId === volumeBackupId)
      .reverse();
  }

  appNameTaken(appName: string): boolean {
    return [...this.composes.values()].some((c) => c.appName === appName);
  }
}
