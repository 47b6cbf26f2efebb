/**
 * A scripted Dokploy for the image cache's unit tests: the project's services as rows,
 * every call recorded in order, deploys that end as the test says (with a deployment
 * row and its log, as Dokploy keeps them).
 */
import { parseCacheMarker } from "../../lib/cache/spec.ts";
import { describeCache } from "../../lib/cache/spec.ts";
import { loadConfig } from "../../lib/config.ts";
import type { Compose, ComposeSummary, DokployApi, Project } from "../../lib/dokploy/api.ts";
import type { MachineDeps } from "../../lib/machine/deps.ts";
import type { ProjectSnapshot } from "../../lib/machine/project.ts";
import { recordingLog } from "./support.ts";

export interface Row {
  composeId: string;
  appName: string;
  description: string;
  composeStatus: "idle" | "running" | "done" | "error";
  createdAt: string;
  serverId: string | null;
  composeFile?: string;
}

export interface DeployRow {
  deploymentId: string;
  status: "running" | "done" | "error";
  createdAt: string;
  finishedAt?: string;
  errorMessage?: string | null;
  log: string;
}

export interface ScriptOptions {
  failCreate?: boolean;
  /** A parallel run's cache that lands first (older createdAt) while ours is being made. */
  racer?: Row;
  /** Machines of the project (only their service rows matter here). */
  machines?: Pick<ComposeSummary, "composeId" | "createdAt" | "serverId">[];
  /** How a compose.deploy of a cache ends; none: it stays queued. */
  deployEnds?: { status: "done" | "error"; at: string; log?: string };
}

export function scriptedDokploy(rows: Row[], opts: ScriptOptions = {}) {
  const calls: string[] = [];
  const deploys = new Map<string, DeployRow[]>();
  const logs = new Map<string, string>();
  let n = 0;
  const find = (id: string) => {
    const row = rows.find((r) => r.composeId === id);
    if (!row) throw new Error(`no compose ${id}`);
    return row;
  };
  const api = {
    createCompose: (input: { appName: string; description: string; serverId: string | null }) => {
      calls.push("compose.create");
      if (opts.failCreate) return Promise.reject(new Error("Dokploy answered 500"));
      if (opts.racer) rows.push(opts.racer);
      const row: Row = {
        composeId: `mine-${++n}`,
        appName: `${input.appName}-zz${n}`,
        description: input.description,
        composeStatus: "idle",
        createdAt: "2026-12-01T10:00:05Z",
        serverId: input.serverId,
      };
      rows.push(row);
      return Promise.resolve(row as unknown as Compose);
    },
    deployCompose: (id: string) => {
      calls.push(`compose.deploy ${id}`);
      const end = opts.deployEnds;
      if (end) {
        addDeploy(id, { status: end.status, createdAt: end.at, finishedAt: end.at, log: end.log });
        find(id).composeStatus = end.status;
      }
      return Promise.resolve();
    },
    deleteCompose: (id: string) => {
      calls.push(`compose.delete ${id}`);
      return Promise.resolve(true);
    },
    updateCompose: (id: string, patch: { description?: string; composeFile?: string }) => {
      calls.push(`compose.update ${id}`);
      Object.assign(find(id), patch);
      return Promise.resolve();
    },
    deployments: (id: string) => {
      calls.push(`deployment.allByCompose ${id}`);
      return Promise.resolve([...(deploys.get(id) ?? [])]);
    },
    deploymentLog: (deploymentId: string) => {
      calls.push(`deployment.readLogs ${deploymentId}`);
      return Promise.resolve(logs.get(deploymentId) ?? "");
    },
  } as unknown as DokployApi;

  /** A deployment row of the cache, as Dokploy records a finished (or running) deploy. */
  function addDeploy(
    composeId: string,
    d: Omit<DeployRow, "deploymentId" | "log" | "status"> & {
      status: DeployRow["status"];
      log?: string;
    },
  ): string {
    const deploymentId = `dep-${composeId}-${(deploys.get(composeId)?.length ?? 0) + 1}`;
    const row = { ...d, deploymentId, log: d.log ?? "" };
    deploys.set(composeId, [...(deploys.get(composeId) ?? []), row]);
    logs.set(deploymentId, row.log);
    return deploymentId;
  }

  const snapshot = (): ProjectSnapshot => {
    const project = {
      projectId: "p1",
      name: "devpod-workspaces",
      environments: [{ environmentId: "e1", name: "production", compose: [...rows] }],
    } as unknown as Project;
    return {
      projects: [project],
      machines: (opts.machines ?? []).map((m, i) => ({
        compose: { name: `devpod-m${i}`, appName: `devpod-m${i}`, composeStatus: "done", ...m },
        marker: { machineId: `m${i}`, sshPort: 32200 + i },
      })),
      caches: rows.flatMap((r) => {
        const m = parseCacheMarker(r.description);
        return m ? [{ compose: { ...r } as unknown as Compose, ...m }] : [];
      }),
    };
  };
  return { api, calls, snapshot, addDeploy, row: find };
}

export function cacheDeps(api: DokployApi, options: Record<string, string> = {}) {
  const { log, lines } = recordingLog();
  const d: MachineDeps = {
    api,
    config: loadConfig({
      DOKPLOY_SERVER_URL: "https://d.example",
      DOKPLOY_API_TOKEN: "tok",
      ...options,
    }),
    machine: { machineId: "ws-1", machineFolder: "/nonexistent" },
    log,
    signal: new AbortController().signal,
    providerVersion: "v9",
  };
  return { d, lines };
}

export const cacheRow = (over: Partial<Row>): Row => ({
  composeId: "old",
  appName: "devpod-image-cache-old111",
  description: describeCache(null, "v9", null, true, true),
  composeStatus: "done",
  createdAt: "2026-12-01T09:00:00Z",
  serverId: null,
  ...over,
});
