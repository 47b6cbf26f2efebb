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
  composeId: string;
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

export interface ServerRow {
  serverId: string;
  name: string;
  description: string | null;
  ipAddress: string;
  port: number;
  username: string;
  appName: string;
  enableDockerCleanup: boolean;
  createdAt: string;
  organizationId: string;
  serverStatus: "active" | "inactive";
  serverType: "deploy" | "build";
  command: string;
  sshKeyId: string | null;
  buildsConcurrency: number;
  metricsConfig: Record<string, unknown>;
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

export class Store {
  projects = new Map<string, ProjectRow>();
  environments = new Map<string, EnvironmentRow>();
  composes = new Map<string, ComposeRow>();
  deployments = new Map<string, DeploymentRow>();
  /** Deployment log text, line by line. */
  deploymentLogs = new Map<string, string[]>();
  servers = new Map<string, ServerRow>();
  written = new Map<string, WrittenFiles>();

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

  appNameTaken(appName: string): boolean {
    return [...this.composes.values()].some((c) => c.appName === appName);
  }
}
