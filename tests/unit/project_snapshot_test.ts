import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { DokployApi, Project } from "../../lib/dokploy/api.ts";
import { silentLogger } from "../../lib/log.ts";
import type { MachineDeps } from "../../lib/machine/deps.ts";
import { describeMachine } from "../../lib/machine/naming.ts";
import { portClaims } from "../../lib/machine/port_race.ts";
import {
  ensureProject,
  readProjectSnapshot,
  refreshProjectSnapshot,
} from "../../lib/machine/project.ts";

const NAME = "devpod-workspaces";

function machine(machineId: string, sshPort: number, serverId: string | null = null) {
  return {
    composeId: `c-${machineId}`,
    name: `devpod-${machineId}`,
    appName: `devpod-${machineId}-abc123`,
    description: describeMachine({ machineId, sshPort }, { providerVersion: "t", owner: "o" }),
    composeStatus: "done" as const,
    serverId,
    createdAt: "2026-01-01T00:00:00Z",
  };
}

function project(projectId: string, createdAt: string, compose: unknown[] = []): Project {
  return {
    projectId,
    name: NAME,
    createdAt,
    environments: [{
      environmentId: `e-${projectId}`,
      name: "production",
      isDefault: true,
      compose,
    }],
  } as Project;
}

/** A Dokploy holding `projects`, recording the procedures called. */
function fakeDokploy(projects: Project[]) {
  const calls: string[] = [];
  const all = new Map(projects.map((p) => [p.projectId, p]));
  const api = {
    projects: () => {
      calls.push("project.all");
      return Promise.resolve([...all.values()].reverse());
    },
    project: (id: string) => {
      calls.push("project.one");
      return Promise.resolve(all.get(id) ?? null);
    },
    createProject: () => {
      calls.push("project.create");
      const mine = project("p-mine", "2026-01-02T00:00:00Z");
      all.set(mine.projectId, mine);
      return Promise.resolve(mine);
    },
    removeProject: (id: string) => {
      calls.push("project.remove");
      all.delete(id);
      return Promise.resolve();
    },
  } as unknown as DokployApi;
  return { api, calls, all };
}

function deps(api: DokployApi): MachineDeps {
  return {
    api,
    config: loadConfig({
      DOKPLOY_SERVER_URL: "https://d.example",
      DOKPLOY_API_TOKEN: "tok-1234",
      DOKPLOY_PROJECT_NAME: NAME,
    }),
    machine: { machineId: "ws-1", machineFolder: "/nonexistent" },
    log: silentLogger,
    signal: new AbortController().signal,
    providerVersion: "test",
  };
}

Deno.test("snapshot: one walk finds the machines by marker and the ports they claim", async () => {
  const other = { ...project("p-other", "2026-01-01T00:00:00Z"), name: "someone-else" };
  const ours = project("p-ours", "2026-01-01T00:00:00Z", [
    machine("ws-1", 32201),
    machine("ws-2", 32202, "srv-1"),
    { ...machine("hand-made", 1), description: "not a machine" },
  ]);
  const { api, calls } = fakeDokploy([other, ours]);
  const snapshot = await readProjectSnapshot(api, NAME);
  assert.deepEqual(calls, ["project.all", "project.one"], "only the project of our name is read");
  const byId = (id: string) => snapshot.machines.find((m) => m.marker.machineId === id);
  assert.equal(byId("ws-1")?.compose.composeId, "c-ws-1");
  assert.equal(byId("hand-made"), undefined);
  assert.deepEqual(portClaims(snapshot, null).map((c) => c.sshPort), [32201]);
  assert.deepEqual(portClaims(snapshot, "srv-1").map((c) => c.sshPort), [32202]);

  calls.length = 0;
  await refreshProjectSnapshot(api, snapshot);
  assert.deepEqual(calls, ["project.one"], "a refresh skips project.all");
  const found = await ensureProject(deps(api), snapshot);
  assert.deepEqual([found.projectId, found.environmentId], ["p-ours", "e-p-ours"]);
  assert.deepEqual(calls, ["project.one"], "an existing project costs nothing more");
});

Deno.test("snapshot: a first create uses the project it made, read from its own answer", async () => {
  const { api, calls } = fakeDokploy([]);
  const found = await ensureProject(deps(api), await readProjectSnapshot(api, NAME));
  assert.equal(found.projectId, "p-mine");
  assert.deepEqual(calls, ["project.all", "project.create", "project.all"]);
  assert.deepEqual(found.snapshot.machines, []);
});

Deno.test("snapshot: a parallel first create's older project wins; ours is removed", async () => {
  const { api, calls, all } = fakeDokploy([]);
  const empty = await readProjectSnapshot(api, NAME);
  // Another run created its project between our read and our create.
  const theirs = project("p-theirs", "2026-01-01T00:00:00Z", [machine("ws-9", 32209)]);
  all.set(theirs.projectId, theirs);
  const found = await ensureProject(deps(api), empty);
  assert.equal(found.projectId, "p-theirs");
  assert.deepEqual(calls, [
    "project.all",
    "project.create",
    "project.all",
    "project.remove",
    "project.one",
  ]);
  assert.deepEqual([...all.keys()], ["p-theirs"], "our extra project is gone");
  assert.deepEqual(portClaims(found.snapshot, null).map((c) => c.sshPort), [32209]);
});
