/** Surviving Dokploy restarts: a create whose answer was lost, lost deploys, stalled machines. */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { Compose, Deployment, DokployApi, Project } from "../../lib/dokploy/api.ts";
import { DokployError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { createComposeOnce } from "../../lib/machine/create_service.ts";
import { lastPhase } from "../../lib/machine/deploy.ts";
import type { MachineDeps } from "../../lib/machine/deps.ts";
import type { MachineInfo } from "../../lib/machine/inventory.ts";
import {
  isLostDeploy,
  LOST_DEPLOY_AGE_MS,
  lostInOutage,
  maybeLost,
} from "../../lib/machine/lost_deploy.ts";
import { describeMachine } from "../../lib/machine/naming.ts";
import type { ProjectSnapshot } from "../../lib/machine/project.ts";
import { stalledMachines } from "../../lib/machine/stalled.ts";
import { machineInfo } from "./support.ts";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function deps(api: DokployApi, lines: string[] = []): MachineDeps {
  const log: Logger = {
    debugEnabled: false,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(m),
    debug() {},
  };
  return {
    api,
    config: loadConfig({ DOKPLOY_SERVER_URL: "https://d.example", DOKPLOY_API_TOKEN: "tok-1234" }),
    machine: { machineId: "ws-1", machineFolder: "/nonexistent" },
    log,
    signal: new AbortController().signal,
    providerVersion: "test",
  };
}

const INPUT = {
  name: "devpod-ws-1",
  appName: "devpod-ws-1",
  description: describeMachine({ machineId: "ws-1", sshPort: 32200, ownerId: "u-alice" }, {
    providerVersion: "t",
    owner: "alice@example.com",
  }),
  environmentId: "e1",
  composeFile: "services: {}",
  serverId: null,
};

function projectWith(compose: unknown[]): Project {
  return {
    projectId: "p1",
    name: "devpod-workspaces",
    environments: [{ environmentId: "e1", name: "production", isDefault: true, compose }],
  } as Project;
}

const EMPTY: ProjectSnapshot = { projects: [projectWith([])], machines: [], caches: [] };
const made = { ...INPUT, composeId: "c-made", appName: "devpod-ws-1-x1" } as unknown as Compose;

/** compose.create fails with `failure` first; the project then holds `after`. */
function createApi(failure: Error, after: unknown[]) {
  const calls: string[] = [];
  const api = {
    createCompose: () => {
      calls.push("compose.create");
      return calls.length === 1 ? Promise.reject(failure) : Promise.resolve(made);
    },
    project: () => {
      calls.push("project.one");
      return Promise.resolve(projectWith(after));
    },
    composeOne: () => {
      calls.push("compose.one");
      return Promise.resolve(made);
    },
  } as unknown as DokployApi;
  return { api, calls };
}

const lostAnswer = new DokployError("cannot reach Dokploy", "compose.create", undefined);

Deno.test("create: a lost answer re-reads the project and adopts the service it made", async () => {
  const { api, calls } = createApi(lostAnswer, [made]);
  const lines: string[] = [];
  assert.equal(await createComposeOnce(deps(api, lines), INPUT, EMPTY, "u-alice"), made);
  assert.deepEqual(calls, ["compose.create", "project.one", "compose.one"]);
  assert.match(lines.join("\n"), /Dokploy made the service; adopting it/);
});

Deno.test("create: a 5xx with no service behind it creates once more", async () => {
  const { api, calls } = createApi(new DokployError("boom", "compose.create", 502), []);
  assert.equal(await createComposeOnce(deps(api), INPUT, EMPTY, "u-alice"), made);
  assert.deepEqual(calls, ["compose.create", "project.one", "compose.create"]);
});

Deno.test("create: a lost answer never adopts another owner's machine of the same id", async () => {
  const bobs = {
    ...made,
    composeId: "c-bob",
    description: INPUT.description.replace("u-alice", "u-bob"),
  } as unknown as Compose;
  const { api, calls } = createApi(lostAnswer, [bobs]);
  assert.equal(await createComposeOnce(deps(api), INPUT, EMPTY, "u-alice"), made);
  assert.deepEqual(calls, ["compose.create", "project.one", "compose.create"]);
});

Deno.test("create: a 4xx is the answer; nothing is re-read or repeated", async () => {
  const { api, calls } = createApi(new DokployError("refused", "compose.create", 400), [made]);
  await assert.rejects(createComposeOnce(deps(api), INPUT, EMPTY, "u-alice"), /refused/);
  assert.deepEqual(calls, ["compose.create"]);
});

const running = (age: number): Deployment => ({
  deploymentId: "d1",
  status: "running",
  createdAt: ago(age),
});
const OLD = LOST_DEPLOY_AGE_MS + 60_000;

Deno.test("lost deploy: only an old running deploy of a running service is worth a look", () => {
  assert.ok(maybeLost({ composeStatus: "running" }, running(OLD), NOW));
  assert.ok(!maybeLost({ composeStatus: "running" }, running(60_000), NOW), "young");
  assert.ok(!maybeLost({ composeStatus: "done" }, running(OLD), NOW), "service idle");
  assert.ok(!maybeLost({ composeStatus: "running" }, { ...running(OLD), status: "done" }, NOW));
  assert.ok(!maybeLost({ composeStatus: "running" }, undefined, NOW), "no row");
  assert.ok(!maybeLost({ composeStatus: "running" }, { deploymentId: "d", status: "running" }));
});

/** A Dokploy whose deploy log reads `logs` in turn and whose service has `containers`. */
function lostApi(containers: unknown[], logs: (string | Error)[]) {
  const calls: string[] = [];
  const api = {
    containers: () => {
      calls.push("containers");
      return Promise.resolve(containers);
    },
    deploymentLog: () => {
      calls.push("readLogs");
      const next = logs.shift() ?? "";
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
  } as unknown as DokployApi;
  return { api, calls };
}

const SERVICE = {
  composeId: "c1",
  composeStatus: "running" as const,
  appName: "a",
  serverId: null,
};
const opts = { now: NOW, gapMs: 1 };

Deno.test("lost deploy: a still log after the age threshold", async () => {
  const { api, calls } = lostApi([], ["pulling\n", "pulling\n"]);
  assert.ok(await isLostDeploy(api, SERVICE, running(OLD), opts));
  assert.deepEqual(calls.sort(), ["readLogs", "readLogs"]);
  // compose up may have finished before Dokploy died: a container is no sign of life.
  const done = lostApi([{ containerId: "x", name: "m", state: "running" }], ["up\n", "up\n"]);
  assert.ok(await isLostDeploy(done.api, SERVICE, running(OLD), opts), "a container");
});

Deno.test("lost deploy: any sign of life keeps it Busy", async () => {
  const growing = lostApi([], ["pulling\n", "pulling\nextracting\n"]);
  assert.ok(!await isLostDeploy(growing.api, SERVICE, running(OLD), opts), "log grows");
  const unreadable = lostApi([], [new DokployError("x", "deployment.readLogs", 500)]);
  assert.ok(!await isLostDeploy(unreadable.api, SERVICE, running(OLD), opts), "cannot tell");
  const young = lostApi([], []);
  assert.ok(!await isLostDeploy(young.api, SERVICE, running(60_000), opts));
  assert.deepEqual(young.calls, [], "a young deploy costs no call");
});

Deno.test("lost in an outage: no row yet, or a still log; no age needed", async () => {
  assert.ok(await lostInOutage(lostApi([], []).api, undefined), "queue emptied by a restart");
  assert.ok(await lostInOutage(lostApi([], ["a", "a"]).api, running(1_000), { gapMs: 1 }));
  assert.ok(!await lostInOutage(lostApi([], ["a", "ab"]).api, running(1_000), { gapMs: 1 }));
  const done = lostApi([], []);
  assert.ok(!await lostInOutage(done.api, { ...running(1_000), status: "done" }));
  assert.deepEqual(done.calls, []);
});

Deno.test("deploy timeout: the last phase is never empty", () => {
  assert.equal(lastPhase("running"), "running");
  for (const none of ["", "queued"]) {
    assert.match(lastPhase(none), /^queued, Dokploy never started it .*devpod up/);
  }
});

function info(machineId: string, extra: Partial<MachineInfo>): MachineInfo {
  return machineInfo(machineId, { createdAt: ago(OLD), ...extra });
}

Deno.test("stalled: known, old, no container and no live deploy", async () => {
  const deploymentsOf = new Map([
    ["c-lost", [running(OLD)]],
    ["c-live", [running(OLD)]],
  ]);
  const logs = new Map([["c-lost", ["a", "a"]], ["c-live", ["a", "ab"]]]);
  let current = "";
  const api = {
    deployments: (id: string) => {
      current = id;
      return Promise.resolve(deploymentsOf.get(id) ?? []);
    },
    containers: () => Promise.resolve([]),
    deploymentLog: () => Promise.resolve(logs.get(current)?.shift() ?? ""),
  } as unknown as DokployApi;
  const machines = [
    info("idle", {}),
    info("orphan", {}),
    info("running", { containers: 1, state: "Running" }),
    info("young", { createdAt: ago(60_000) }),
    info("live", { composeStatus: "running" }),
  ];
  const known = new Set(["idle", "running", "young", "live"]);
  const stalled = await stalledMachines(api, machines, known, opts);
  assert.deepEqual(stalled.map((m) => m.machineId), ["idle"]);
  // The lost one, on its own (the fake reads one service's log at a time).
  const lost = await stalledMachines(
    api,
    [info("lost", { composeStatus: "running" })],
    new Set(["lost"]),
    opts,
  );
  assert.deepEqual(lost.map((m) => m.machineId), ["lost"]);
});
