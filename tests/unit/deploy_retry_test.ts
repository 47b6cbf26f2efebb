import assert from "node:assert/strict";
import { join } from "node:path";
import YAML from "yaml";
import { loadConfig } from "../../lib/config.ts";
import type { DokployApi } from "../../lib/dokploy/api.ts";
import { DeployFailedError } from "../../lib/errors.ts";
import { recordingLog } from "./support.ts";
import { effectiveCpus, planCpuCap, serverCpusFromError } from "../../lib/machine/cpu_cap.ts";
import { deployFailureMessage } from "../../lib/machine/deploy.ts";
import { deployMachine } from "../../lib/machine/deploy_retry.ts";
import type { MachineDeps } from "../../lib/machine/deps.ts";
import { machineComposeFile } from "../../lib/machine/spec.ts";
import { type MachineState, readState, STATE_FILE, writeState } from "../../lib/machine/state.ts";

const CPU_REFUSAL =
  "Error response from daemon: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
const PORT_REFUSAL =
  "Error response from daemon: driver failed programming external connectivity on endpoint x: Bind for 0.0.0.0:32222 failed: port is already allocated";

Deno.test("cpu cap: Docker's refusal gives the server's CPUs; other text gives null", () => {
  assert.equal(serverCpusFromError(CPU_REFUSAL), 2);
  assert.equal(
    serverCpusFromError(
      "Dokploy failed to deploy the machine: Container x Creating | Error response from daemon: Range of CPUs is from 0.01 to 12.00, as there are only 12 CPUs available | Error: ❌ Docker command failed",
    ),
    12,
  );
  assert.equal(
    serverCpusFromError("Range of CPUs is from 0.01 to 1.00, as there are only 1 CPU available"),
    1,
  );
  assert.equal(serverCpusFromError("Minimum memory limit allowed is 6MB"), null);
  assert.equal(serverCpusFromError(PORT_REFUSAL), null);
  assert.equal(serverCpusFromError(""), null);
});

Deno.test("cpu cap: the decision names the option that asked for more", () => {
  assert.deepEqual(planCpuCap({ cpus: 4, machineType: "medium" }, undefined, 2), {
    cpuLimit: 2,
    warning:
      "MACHINE_TYPE medium asks for 4 CPUs but the server has 2; capped at 2 (set MACHINE_CPUS to choose)",
  });
  const fromOption = planCpuCap({ cpus: 3, machineType: "small" }, undefined, 2);
  assert.equal(fromOption?.cpuLimit, 2);
  assert.match(
    fromOption!.warning,
    /^MACHINE_CPUS 3 is more than the server's 2 CPUs; capped at 2/,
  );
  assert.match(planCpuCap({ cpus: 1.5, machineType: "small" }, undefined, 1)!.warning, /1\.5/);
});

Deno.test("cpu cap: no cap when it cannot help; a remembered cap can be lowered", () => {
  assert.equal(planCpuCap({ cpus: 2, machineType: "small" }, undefined, 2), null);
  assert.equal(planCpuCap({ cpus: 4, machineType: "medium" }, 2, 2), null, "already capped");
  assert.equal(planCpuCap({ cpus: 8, machineType: "large" }, 3, 2)?.cpuLimit, 2);
});

Deno.test("cpu cap: the effective limit is the lower of option and remembered cap", () => {
  assert.equal(effectiveCpus(4, undefined), 4);
  assert.equal(effectiveCpus(4, 2), 2);
  assert.equal(effectiveCpus(1, 2), 1, "an option lowered later wins");
});

/** A Dokploy that fails deploys with scripted Docker errors (null = success). */
function fakeDokploy(outcomes: (string | null)[]) {
  const rows: { deploymentId: string; status: string; errorMessage: null }[] = [];
  const logs = new Map<string, string>();
  const updates: { composeFile?: string; description?: string }[] = [];
  const api = {
    deployments: () => Promise.resolve([...rows]),
    deployCompose: () => {
      const id = `dep-${rows.length + 1}`;
      const outcome = outcomes.shift() ?? null;
      rows.unshift({
        deploymentId: id,
        status: outcome === null ? "done" : "error",
        errorMessage: null,
      });
      if (outcome !== null) {
        logs.set(id, `Container x Creating\n${outcome}\nError: ❌ Docker command failed\n`);
      }
      return Promise.resolve();
    },
    deploymentLog: (id: string) => Promise.resolve(logs.get(id) ?? ""),
    updateCompose: (_id: string, patch: { composeFile?: string; description?: string }) => {
      updates.push(patch);
      return Promise.resolve();
    },
  } as unknown as DokployApi;
  return { api, updates, deploys: () => rows.length };
}

async function world(options: Record<string, string>, outcomes: (string | null)[]) {
  const folder = await Deno.makeTempDir();
  const dokploy = fakeDokploy(outcomes);
  const { log, lines } = recordingLog();
  const d: MachineDeps = {
    api: dokploy.api,
    config: loadConfig({
      DOKPLOY_SERVER_URL: "https://d.example",
      DOKPLOY_API_TOKEN: "tok-1234",
      SSH_PORT_RANGE: "40000-40009",
      ...options,
    }),
    machine: { machineId: "ws-1", machineFolder: folder },
    log,
    signal: new AbortController().signal,
    providerVersion: "test",
  };
  const state: MachineState = {
    version: 1,
    machineId: "ws-1",
    composeId: "c1",
    appName: "devpod-ws-1-abc123",
    projectId: "p1",
    environmentId: "e1",
    serverId: null,
    sshHost: "127.0.0.1",
    sshPort: 40000,
    sshUser: "devpod",
    hostPublicKey: "ssh-ed25519 AAAAC3NzaHOST host",
    hostKeyFingerprint: "SHA256:x",
    createdAt: "2026-01-01T00:00:00Z",
  };
  await writeState(folder, state);
  const cpusOf = (file: string | undefined) => YAML.parse(file ?? "").services.machine.cpus;
  return { d, state, folder, lines, cpusOf, ...dokploy };
}

const KEY = "ssh-ed25519 AAAAC3NzaCLIENT devpod";
const plan = {
  title: "devpod: create machine",
  deployments: [],
  readClaims: () => Promise.resolve([]),
};

Deno.test("deploy: a CPU limit above the server's is capped once, remembered, redeployed", async () => {
  const w = await world({ MACHINE_TYPE: "medium" }, [CPU_REFUSAL, null]);
  try {
    await deployMachine(w.d, w.state, KEY, Date.now() + 10_000, plan);
    assert.equal(w.deploys(), 2);
    assert.equal(w.updates.length, 1);
    assert.equal(w.cpusOf(w.updates[0].composeFile), "2");
    const warnings = w.lines.filter((l) => l.startsWith("warn "));
    assert.deepEqual(warnings, [
      "warn MACHINE_TYPE medium asks for 4 CPUs but the server has 2; capped at 2 (set MACHINE_CPUS to choose)",
    ]);
    const saved = await readState(w.folder);
    assert.equal(saved?.cpuLimit, 2);
    assert.equal(saved?.sshPort, 40000, "the port stays");
    // What `start` will expect is exactly what was deployed: no "spec changed" redeploy.
    assert.equal(machineComposeFile(w.d, KEY, saved!), w.updates[0].composeFile);
  } finally {
    await Deno.remove(w.folder, { recursive: true });
  }
});

Deno.test("deploy: one loop fixes a taken port and a CPU limit in the same run", async () => {
  const w = await world({ MACHINE_CPUS: "3" }, [PORT_REFUSAL, CPU_REFUSAL, null]);
  try {
    await deployMachine(w.d, w.state, KEY, Date.now() + 10_000, plan);
    assert.equal(w.deploys(), 3);
    const saved = (await readState(w.folder))!;
    assert.notEqual(saved.sshPort, 40000, "moved off the taken port");
    assert.equal(saved.cpuLimit, 2);
    const last = w.updates.at(-1)!;
    assert.equal(w.cpusOf(last.composeFile), "2");
    assert.match(last.description!, new RegExp(`port=${saved.sshPort};cpus=2;mem=4096\\]`));
    const knownHosts = await Deno.readTextFile(join(w.folder, "known_hosts"));
    assert.match(knownHosts, new RegExp(`\\[127\\.0\\.0\\.1\\]:${saved.sshPort} `));
    assert.equal(w.lines.filter((l) => l.startsWith("warn ")).length, 1, "warned once");
    assert.match(w.lines.join("\n"), /warn MACHINE_CPUS 3 is more than the server's 2 CPUs/);
  } finally {
    await Deno.remove(w.folder, { recursive: true });
  }
});

Deno.test("deploy: a refusal capping cannot fix fails at once, without looping", async () => {
  const w = await world({ MACHINE_TYPE: "medium" }, [CPU_REFUSAL, CPU_REFUSAL, null]);
  try {
    w.state.cpuLimit = 2;
    await assert.rejects(
      deployMachine(w.d, w.state, KEY, Date.now() + 10_000, plan),
      (err: Error) => err instanceof DeployFailedError && /Range of CPUs/.test(err.message),
    );
    assert.equal(w.deploys(), 1);
    assert.equal(w.updates.length, 0);
  } finally {
    await Deno.remove(w.folder, { recursive: true });
  }
});

Deno.test("deploy: start keeps its port (a taken port fails) but still caps CPUs", async () => {
  const w = await world({ MACHINE_TYPE: "large" }, [CPU_REFUSAL, PORT_REFUSAL]);
  try {
    await assert.rejects(
      deployMachine(w.d, w.state, KEY, Date.now() + 10_000, {
        title: "devpod: start machine",
        deployments: [],
      }),
      /port is already allocated/,
    );
    assert.equal(w.deploys(), 2);
    const saved = (await readState(w.folder))!;
    assert.equal(saved.sshPort, 40000);
    assert.equal(saved.cpuLimit, 2);
  } finally {
    await Deno.remove(w.folder, { recursive: true });
  }
});

Deno.test("deploy: the CPU refusal survives the one-line deploy failure message", () => {
  const tail =
    `Container x Creating\nContainer x Created\n${CPU_REFUSAL}\nError: ❌ Docker command failed\n`;
  assert.equal(serverCpusFromError(deployFailureMessage(null, tail)), 2);
});

Deno.test("state: files without cpuLimit still load; a bad cpuLimit is refused", async () => {
  const folder = await Deno.makeTempDir();
  try {
    const base = {
      version: 1,
      machineId: "m",
      composeId: "c",
      appName: "a",
      projectId: "p",
      environmentId: "e",
      serverId: null,
      sshHost: "h",
      sshPort: 32222,
      sshUser: "devpod",
      hostPublicKey: "k",
      hostKeyFingerprint: "f",
      createdAt: "t",
    };
    const write = (v: unknown) => Deno.writeTextFile(join(folder, STATE_FILE), JSON.stringify(v));
    await write(base);
    assert.equal((await readState(folder))?.cpuLimit, undefined);
    await write({ ...base, cpuLimit: 1.5 });
    assert.equal((await readState(folder))?.cpuLimit, 1.5);
    await write({ ...base, cpuLimit: "2" });
    await assert.rejects(readState(folder), /unknown format/);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("deploy: a missing image-cache network drops the cache and deploys again", async () => {
  const cache = "devpod-image-cache-q1w2e3";
  for (
    const refusal of [
      `network ${cache} declared as external, but could not be found`,
      `ERROR: Network ${cache} declared as external, but could not be found. Please create the network manually using \`docker network create ${cache}\` and try again.`,
      // A swarm node (Dokploy's servers are): compose skips the check, the daemon refuses.
      `Error response from daemon: network ${cache} not found`,
      `Error response from daemon: No such network: ${cache}`,
    ]
  ) {
    const w = await world({}, [refusal, null]);
    try {
      w.state.imageCache = cache;
      await deployMachine(w.d, w.state, KEY, Date.now() + 10_000, plan);
      assert.equal(w.deploys(), 2);
      const machine = YAML.parse(w.updates[0].composeFile!).services.machine;
      assert.deepEqual(machine.networks, ["machine"]);
      assert.equal(machine.environment.DEVPOD_REGISTRY_MIRROR, undefined);
      const saved = (await readState(w.folder))!;
      assert.equal(saved.imageCache, undefined);
      assert.equal(machineComposeFile(w.d, KEY, saved), w.updates[0].composeFile);
      assert.match(w.lines.join("\n"), /warn the shared image cache .* now pulls images from/);
    } finally {
      await Deno.remove(w.folder, { recursive: true });
    }
  }
});

Deno.test("deploy: another missing external network is not ours to fix", async () => {
  const w = await world({}, ["network somebody-else declared as external, but could not be found"]);
  try {
    w.state.imageCache = "devpod-image-cache-q1w2e3";
    await assert.rejects(
      deployMachine(w.d, w.state, KEY, Date.now() + 10_000, plan),
      /somebody-else declared as external/,
    );
    assert.equal(w.deploys(), 1);
    assert.equal(w.state.imageCache, "devpod-image-cache-q1w2e3");
  } finally {
    await Deno.remove(w.folder, { recursive: true });
  }
});
