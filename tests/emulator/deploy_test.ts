/** The deploy queue and docker-like failures and restart policy of machines. */
import assert from "node:assert/strict";
import { type Emulator, startEmulator } from "./mod.ts";
import { call, ed25519, freePort, listening, machineCompose, ok, waitFor } from "./test_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false, ignore: Deno.uid() !== 0 };

interface Deployment {
  deploymentId: string;
  status: string;
  startedAt: string;
  finishedAt: string;
}

async function setup(emu: Emulator): Promise<{ environmentId: string; authorizedKey: string }> {
  const { environment } = await ok<{ environment: { environmentId: string } }>(
    emu,
    "POST",
    "project.create",
    { name: "p" },
  );
  const dir = await Deno.makeTempDir();
  const key = await ed25519(dir, "client");
  await Deno.remove(dir, { recursive: true });
  return { environmentId: environment.environmentId, authorizedKey: key.publicKey };
}

async function createMachine(
  emu: Emulator,
  env: { environmentId: string; authorizedKey: string },
  composeFile: string,
): Promise<{ composeId: string; appName: string }> {
  return await ok(emu, "POST", "compose.create", {
    name: "m",
    environmentId: env.environmentId,
    composeType: "docker-compose",
    sourceType: "raw",
    composeFile,
  });
}

async function lastDeployment(emu: Emulator, composeId: string) {
  const list = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", { composeId });
  const log = await ok<string>(emu, "GET", "deployment.readLogs", {
    deploymentId: list[0].deploymentId,
  });
  return { ...list[0], log, count: list.length };
}

Deno.test("queue: deploys on one server run one at a time", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 400 });
  try {
    const env = await setup(emu);
    const a = await createMachine(emu, env, machineCompose({ port: freePort(), ...env }));
    const b = await createMachine(emu, env, machineCompose({ port: freePort(), ...env }));
    await ok(emu, "POST", "compose.deploy", { composeId: a.composeId });
    await ok(emu, "POST", "compose.deploy", { composeId: b.composeId });
    await waitFor("a running", async () => {
      const c = await ok(emu, "GET", "compose.one", { composeId: a.composeId });
      return c.composeStatus === "running";
    });
    // b waits in the queue: not started, no deployment row yet.
    assert.equal((await emu.snapshot()).composes[1].composeStatus, "idle");
    assert.deepEqual(
      await ok(emu, "GET", "deployment.allByCompose", { composeId: b.composeId }),
      [],
    );
    await emu.waitIdle(10_000);
    const da = await lastDeployment(emu, a.composeId);
    const db = await lastDeployment(emu, b.composeId);
    assert.equal(da.status, "done");
    assert.equal(db.status, "done");
    assert.ok(Date.parse(db.startedAt) >= Date.parse(da.finishedAt), "b started after a ended");
    assert.equal((await emu.snapshot()).machineProcesses, 2);
  } finally {
    await emu.close();
  }
});

Deno.test(
  "queue: each remote server has its own queue; docker.* needs its serverId",
  opts,
  async () => {
    const emu = await startEmulator({
      deployDelayMs: 400,
      servers: [{ serverId: "srv-1", name: "remote", ipAddress: "127.0.0.1" }],
    });
    try {
      const env = await setup(emu);
      const local = await createMachine(emu, env, machineCompose({ port: freePort(), ...env }));
      const remote = await ok<{ composeId: string; appName: string; serverId: string }>(
        emu,
        "POST",
        "compose.create",
        {
          name: "r",
          environmentId: env.environmentId,
          serverId: "srv-1",
          composeFile: machineCompose({ port: freePort(), ...env }),
        },
      );
      assert.equal(remote.serverId, "srv-1");
      await ok(emu, "POST", "compose.deploy", { composeId: local.composeId });
      await ok(emu, "POST", "compose.deploy", { composeId: remote.composeId });
      await waitFor(
        "both deploying",
        async () => (await emu.snapshot()).composes.every((c) => c.composeStatus === "running"),
      );
      await emu.waitIdle();
      const match = (serverId?: string) =>
        ok<unknown[]>(emu, "GET", "docker.getContainersByAppNameMatch", {
          appName: remote.appName,
          appType: "docker-compose",
          ...(serverId ? { serverId } : {}),
        });
      assert.equal((await match()).length, 0, "not on the Dokploy host");
      assert.equal((await match("srv-1")).length, 1);
      const bad = await call(emu, "POST", "compose.create", {
        name: "x",
        environmentId: env.environmentId,
        serverId: "nope",
      });
      assert.equal(bad.status, 404);
    } finally {
      await emu.close();
    }
  },
);

Deno.test("deploy errors: taken port, missing image, no service, bad shapes", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 0 });
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const env = await setup(emu);
    const taken = (blocker.addr as Deno.NetAddr).port;
    const cases = [
      {
        file: machineCompose({ port: taken, ...env }),
        expect: new RegExp(`Bind for 0\\.0\\.0\\.0:${taken} failed: port is already allocated`),
        state: "created",
      },
      {
        file: machineCompose({ port: freePort(), image: "ghcr.io/x/does-not-exist:1", ...env }),
        expect: /pull access denied/,
        state: "none",
      },
      {
        file: "services: {}\n",
        expect: /no service selected/,
        state: "none",
      },
      {
        file: "services:\n  web:\n    image: nginx\n    ports: ['8080:80']\n",
        expect: /emulator: service "web" publishes ports/,
        state: "none",
      },
      {
        file: machineCompose({ port: freePort(), ...env }).replace(
          "    labels:",
          "    networks: [elsewhere]\n    labels:",
        ),
        expect: /service "machine" refers to undefined network elsewhere: invalid compose project/,
        state: "none",
      },
      {
        file: "services:\n  machine:\n    ports: ['2222:22']\n",
        expect: /neither an image nor a build context/,
        state: "none",
      },
    ];
    for (const c of cases) {
      const m = await createMachine(emu, env, c.file);
      await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
      await emu.waitIdle();
      const d = await lastDeployment(emu, m.composeId);
      assert.equal(d.status, "error");
      assert.match(d.log, c.expect);
      assert.match(d.log, /Error: ❌ Docker command failed$/);
      const snap = (await emu.snapshot()).composes.find((s) => s.composeId === m.composeId)!;
      assert.equal(snap.composeStatus, "error");
      assert.equal(snap.container.state, c.state);
    }
    assert.equal((await emu.snapshot()).machineProcesses, 0);

    // A port held by another emulated machine is taken too.
    const port = freePort();
    const first = await createMachine(emu, env, machineCompose({ port, ...env }));
    const second = await createMachine(emu, env, machineCompose({ port, ...env }));
    await ok(emu, "POST", "compose.deploy", { composeId: first.composeId });
    await ok(emu, "POST", "compose.deploy", { composeId: second.composeId });
    await emu.waitIdle();
    assert.equal((await lastDeployment(emu, first.composeId)).status, "done");
    const clash = await lastDeployment(emu, second.composeId);
    assert.equal(clash.status, "error");
    assert.match(clash.log, /port is already allocated/);
    // compose.start hits the same docker error synchronously: 500, status idle.
    const start = await call(emu, "POST", "compose.start", { composeId: second.composeId });
    assert.equal(start.status, 500);
    assert.match((start.body as { message: string }).message, /port is already allocated/);
    assert.equal(
      (await emu.snapshot()).composes.find((s) => s.composeId === second.composeId)!.composeStatus,
      "idle",
    );
  } finally {
    blocker.close();
    await emu.close();
  }
});

Deno.test("interpolation: env values reach the machine, unset ones warn", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 0 });
  try {
    const env = await setup(emu);
    const port = freePort();
    const file = machineCompose({ port, ...env }).replace(
      "DEVPOD_DOCKER_MODE: dind",
      "DEVPOD_DOCKER_MODE: ${MODE:-none}\n      UNSET_ONE: ${NOT_SET}",
    );
    const m = await createMachine(emu, env, file);
    await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
    await emu.waitIdle();
    const d = await lastDeployment(emu, m.composeId);
    assert.equal(d.status, "done");
    assert.match(d.log, /The \\"NOT_SET\\" variable is not set/);
    assert.match(d.log, /The \\"DEVPOD_HOST_KEY_B64\\" variable is not set/);
  } finally {
    await emu.close();
  }
});

Deno.test("restart policy: on-failure restarts, exit 0 stays exited", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 0 });
  try {
    const env = await setup(emu);
    const port = freePort();
    // Fails on its first boot only (marker in the persistent home), then serves ssh.
    const flaky =
      "if [ ! -e /home/devpod/.booted ]; then touch /home/devpod/.booted; exit 3; fi; " +
      'exec /usr/sbin/sshd -D -e -f "$$DEVPOD_SSHD_CONFIG"';
    const m = await createMachine(emu, env, machineCompose({ port, script: flaky, ...env }));
    await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
    await emu.waitIdle();
    await waitFor("restarted machine listening", () => listening(port), 5000);
    const snap = (await emu.snapshot()).composes[0];
    assert.equal(snap.container.state, "running");
    assert.equal(snap.composeStatus, "done");

    // Idle auto-stop: the machine exits 0 by itself and is not restarted.
    const watchdogFired = 'test "$$DEVPOD_BOOTSTRAP_MODE" = supervise && exit 0; exit 9';
    const idle = await createMachine(
      emu,
      env,
      machineCompose({ port: freePort(), script: watchdogFired, ...env }),
    );
    await ok(emu, "POST", "compose.deploy", { composeId: idle.composeId });
    await emu.waitIdle();
    await waitFor(
      "idle machine exited",
      async () => (await emu.snapshot()).composes[1].container.state === "exited",
    );
    await new Promise((r) => setTimeout(r, 1300));
    const after = (await emu.snapshot()).composes[1];
    assert.deepEqual(after.container, { state: "exited", exitCode: 0 });
    assert.equal(after.composeStatus, "done", "deploy status is not container state");
    const ps = await ok<{ state: string; status: string }[]>(
      emu,
      "GET",
      "docker.getContainersByAppNameMatch",
      { appName: idle.appName, appType: "docker-compose" },
    );
    assert.equal(ps[0].state, "exited");
    assert.match(ps[0].status, /^Exited \(0\) .* ago$/);
  } finally {
    await emu.close();
  }
});

Deno.test(
  "redeploy keeps an unchanged running machine and recreates a changed one",
  opts,
  async () => {
    const emu = await startEmulator({ deployDelayMs: 0 });
    try {
      const env = await setup(emu);
      const m = await createMachine(emu, env, machineCompose({ port: freePort(), ...env }));
      const containerId = async () =>
        (await ok<{ containerId: string }[]>(emu, "GET", "docker.getContainersByAppNameMatch", {
          appName: m.appName,
        }))[0].containerId;
      await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
      await emu.waitIdle();
      const id1 = await containerId();
      const again = await ok(emu, "POST", "compose.redeploy", { composeId: m.composeId });
      assert.equal(again.message, "Redeployment queued");
      await emu.waitIdle();
      assert.equal(await containerId(), id1);
      const d = await lastDeployment(emu, m.composeId);
      assert.equal(d.count, 2);
      assert.match(d.log, /Container .* {2}Running/);

      const port = freePort();
      await ok(emu, "POST", "compose.update", {
        composeId: m.composeId,
        composeFile: machineCompose({ port, ...env }),
      });
      await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
      await emu.waitIdle();
      assert.notEqual(await containerId(), id1);
      assert.equal((await emu.snapshot()).composes[0].publishedPort, port);
      assert.equal((await emu.snapshot()).machineProcesses, 1);
    } finally {
      await emu.close();
    }
  },
);
