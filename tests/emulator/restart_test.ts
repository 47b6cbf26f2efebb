/** emu.restart() (a Dokploy restart) and the dropAfter fault, as a client sees them. */
import assert from "node:assert/strict";
import { DeployQueues } from "./deploy_queue.ts";
import { type Emulator, startEmulator } from "./mod.ts";
import { call, listening, machineCompose, machineFixture, ok, waitFor } from "./test_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const asRoot = { ...opts, ignore: Deno.uid() !== 0 };

const portOf = (emu: Emulator) => Number(new URL(emu.url).port);

/** A raw POST that resolves to the status, or "dropped" on a network error. */
async function post(emu: Emulator, procedure: string, input: unknown) {
  try {
    const res = await fetch(`${emu.url}/api/${procedure}`, {
      method: "POST",
      headers: { "x-api-key": emu.token, "content-type": "application/json" },
      body: JSON.stringify(input),
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    return res.status;
  } catch (e) {
    if (e instanceof TypeError) return "dropped";
    throw e;
  }
}

/** A project and a machine service of the provider's shape (not deployed yet). */
async function service(emu: Emulator) {
  const dir = await Deno.makeTempDir();
  const fx = await machineFixture(emu, dir, "p");
  const compose = machineCompose({ port: fx.port, authorizedKey: fx.client.publicKey });
  const row = await ok<{ composeId: string; appName: string }>(emu, "POST", "compose.create", {
    name: "m",
    environmentId: fx.environmentId,
    composeType: "docker-compose",
    sourceType: "raw",
    composeFile: compose,
  });
  await ok(emu, "POST", "compose.update", {
    composeId: row.composeId,
    env: `DEVPOD_HOST_KEY_B64=${fx.host.privateB64}`,
  });
  return { ...row, ...fx, dir };
}

const composeOne = (emu: Emulator, composeId: string) =>
  ok<{ composeStatus: string; deployments: { status: string; logPath: string }[] }>(
    emu,
    "GET",
    "compose.one",
    { composeId },
  );

Deno.test(
  "restart: refused while down, same port after, store kept, in-flight call unanswered and unhandled",
  opts,
  async () => {
    const emu = await startEmulator();
    try {
      const { environment } = await ok<{ environment: { environmentId: string } }>(
        emu,
        "POST",
        "project.create",
        { name: "kept" },
      );
      let restarted: Promise<void> | undefined;
      emu.faults.add({
        procedure: "compose.create",
        delayMs: 30_000,
        onMatch: () => restarted = emu.restart({ downMs: 1000 }),
      });
      const inFlight = await post(emu, "compose.create", {
        name: "m",
        environmentId: environment.environmentId,
        composeType: "docker-compose",
        sourceType: "raw",
        composeFile: "services: {}\n",
      });
      assert.equal(inFlight, "dropped");
      assert.equal(await listening(portOf(emu)), false, "refused while down");
      await restarted;
      assert.equal(await listening(portOf(emu)), true, "same port again");
      const projects = await ok<{ name: string }[]>(emu, "GET", "project.all");
      assert.deepEqual(projects.map((p) => p.name), ["kept"]);
      // The dead process never got to create the service.
      assert.equal((await emu.snapshot()).composes.length, 0);
    } finally {
      await emu.close();
    }
  },
);

Deno.test(
  "restart: a deploy in flight is lost — running forever, no container, log not growing",
  asRoot,
  async () => {
    const emu = await startEmulator({ deployDelayMs: 3000 });
    try {
      const svc = await service(emu);
      await ok(emu, "POST", "compose.deploy", { composeId: svc.composeId });
      await waitFor(
        "deploy running",
        async () => (await composeOne(emu, svc.composeId)).composeStatus === "running",
      );
      await emu.restart({ downMs: 200 });
      await emu.waitIdle(1000); // the new Dokploy's queue is empty

      const logPath = (await composeOne(emu, svc.composeId)).deployments[0].logPath;
      const logSize = (await Deno.stat(logPath)).size;
      await new Promise((r) => setTimeout(r, 3500)); // past the lost job's image work
      const after = await composeOne(emu, svc.composeId);
      assert.equal(after.composeStatus, "running");
      assert.deepEqual(after.deployments.map((d) => d.status), ["running"]);
      assert.equal((await Deno.stat(logPath)).size, logSize, "log not growing");
      const snap = await emu.snapshot();
      assert.equal(snap.composes[0].container.state, "none", "compose up never ran");

      // A redeploy on the restarted Dokploy works; the lost row stays as it was.
      await ok(emu, "POST", "compose.redeploy", { composeId: svc.composeId });
      await emu.waitIdle(20_000);
      const done = await composeOne(emu, svc.composeId);
      assert.equal(done.composeStatus, "done");
      assert.deepEqual(done.deployments.map((d) => d.status).sort(), ["done", "running"]);
      await waitFor("sshd up", () => listening(svc.port), 10_000);
      await Deno.remove(svc.dir, { recursive: true });
    } finally {
      await emu.close();
    }
  },
);

Deno.test("restart: running machines keep running", asRoot, async () => {
  const emu = await startEmulator({ deployDelayMs: 50 });
  try {
    const svc = await service(emu);
    await ok(emu, "POST", "compose.deploy", { composeId: svc.composeId });
    await emu.waitIdle(20_000);
    await waitFor("sshd up", () => listening(svc.port), 10_000);
    await emu.restart({ downMs: 200 });
    assert.equal(await listening(svc.port), true);
    const snap = await emu.snapshot();
    assert.equal(snap.composes[0].container.state, "running");
    assert.equal(snap.composes[0].composeStatus, "done");
    await Deno.remove(svc.dir, { recursive: true });
  } finally {
    await emu.close();
  }
});

Deno.test("faults: dropAfter handles the call, then drops the connection", opts, async () => {
  const emu = await startEmulator();
  try {
    emu.faults.add({ procedure: "project.create", dropAfter: true });
    assert.equal(await post(emu, "project.create", { name: "p" }), "dropped");
    assert.equal(emu.requests.at(-1)?.status, 0);
    assert.equal((await emu.snapshot()).projects.length, 1, "it took effect");
    assert.equal((await call(emu, "GET", "project.all")).status, 200, "rule used up");
  } finally {
    await emu.close();
  }
});

Deno.test("queues: abandon forgets queued and running jobs; settle waits for both", async () => {
  const queues = new DeployQueues();
  const started: string[] = [];
  let lostSeen = false;
  let release = () => {};
  queues.enqueue("host", async (lost) => {
    started.push("running");
    await new Promise<void>((r) => release = r);
    lostSeen = lost.aborted;
  });
  queues.enqueue("host", () => {
    started.push("queued");
    return Promise.resolve();
  });
  await waitFor("first job started", () => started.length === 1);
  assert.equal(queues.abandon(), 2);
  assert.equal(queues.pending, 0);
  await queues.waitIdle(100);
  release();
  await queues.settle(5000);
  assert.deepEqual(started, ["running"], "the queued job never starts");
  assert.equal(lostSeen, true);
});
