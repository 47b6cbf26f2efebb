/** End-to-end: a compose machine deployed by the emulator is a real, reachable sshd. */
import assert from "node:assert/strict";
import { startEmulator } from "./mod.ts";
import {
  call,
  ed25519,
  freePort,
  listening,
  machineCompose,
  machineFixture,
  ok,
  processesWithEnv,
  ssh,
  waitFor,
} from "./test_support.ts";

const isRoot = Deno.uid() === 0;
const opts = { sanitizeResources: false, sanitizeOps: false, ignore: !isRoot };

Deno.test("compose lifecycle: deploy → ssh → stop → start keeps home → delete", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 100 });
  const keysDir = await Deno.makeTempDir();
  try {
    const { host, client, port, knownHosts, environmentId } = await machineFixture(
      emu,
      keysDir,
      "devpod-workspaces",
    );
    const created = await ok(emu, "POST", "compose.create", {
      name: "machine one",
      environmentId,
      appName: "DevPod-M1",
      composeType: "docker-compose",
      sourceType: "raw",
      composeFile: machineCompose({ port, authorizedKey: client.publicKey }),
    });
    assert.match(String(created.appName), /^devpod-m1-[a-z0-9]{6}$/);
    assert.equal(created.composeStatus, "idle");
    assert.equal(created.env, null);
    const composeId = String(created.composeId);
    const appName = String(created.appName);
    await ok(emu, "POST", "compose.update", {
      composeId,
      env: `DEVPOD_HOST_KEY_B64="${host.privateB64}"`,
    });

    const queued = await ok(emu, "POST", "compose.deploy", { composeId });
    assert.deepEqual(queued, { success: true, message: "Deployment queued", composeId });
    const seen = new Set<string>();
    await waitFor("deploy done", async () => {
      const c = await ok(emu, "GET", "compose.one", { composeId });
      seen.add(String(c.composeStatus));
      assert.notEqual(c.composeStatus, "error");
      return c.composeStatus === "done";
    });
    assert.ok(seen.has("running"), "composeStatus passes through running");

    const deployments = await ok<{ deploymentId: string; status: string }[]>(
      emu,
      "GET",
      "deployment.allByCompose",
      { composeId },
    );
    assert.equal(deployments.length, 1);
    assert.equal(deployments[0].status, "done");
    const logText = await ok<string>(emu, "GET", "deployment.readLogs", {
      deploymentId: deployments[0].deploymentId,
    });
    assert.match(logText, /Container .*-machine-1 {2}Started/);
    assert.match(logText, /Docker Compose Deployed: ✅/);

    const containers = await ok<{ name: string; state: string; status: string }[]>(
      emu,
      "GET",
      "docker.getContainersByAppNameMatch",
      { appName, appType: "docker-compose" },
    );
    assert.equal(containers.length, 1);
    assert.equal(containers[0].name, `${appName}-machine-1`);
    assert.equal(containers[0].state, "running");
    assert.match(containers[0].status, /^Up /);

    // Provider-side wait: the container is up, sshd may need a moment.
    await waitFor("sshd listening", () => listening(port));
    const first = await ssh(port, client.privatePath, knownHosts, "echo hi > ~/f; cat ~/f; id -un");
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "hi\ndevpod\n");

    assert.equal(await ok(emu, "POST", "compose.stop", { composeId }), true);
    let snap = (await emu.snapshot()).composes[0];
    assert.equal(snap.composeStatus, "idle");
    assert.equal(snap.container.state, "exited");
    assert.equal(snap.publishedPort, port);
    assert.equal((await emu.snapshot()).machineProcesses, 0);
    assert.equal(await listening(port), false, "ssh port closed after stop");
    const refused = await ssh(port, client.privatePath, knownHosts, "true");
    assert.notEqual(refused.code, 0);
    const stopped = await ok<{ state: string; status: string }[]>(
      emu,
      "GET",
      "docker.getContainersByAppNameMatch",
      { appName, appType: "docker-compose" },
    );
    assert.equal(stopped[0].state, "exited");
    assert.match(stopped[0].status, /^Exited \(0\) /);

    assert.equal(await ok(emu, "POST", "compose.start", { composeId }), true);
    assert.equal((await emu.snapshot()).composes[0].composeStatus, "done");
    await waitFor("sshd back", () => listening(port));
    const again = await ssh(port, client.privatePath, knownHosts, "cat ~/f");
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, "hi\n", "home volume survives stop/start");

    snap = (await emu.snapshot()).composes[0];
    assert.deepEqual(snap.volumes, [`${appName}_docker`, `${appName}_home`]);
    const deleted = await ok(emu, "POST", "compose.delete", { composeId, deleteVolumes: true });
    assert.equal(deleted.composeId, composeId);
    const gone = await call(emu, "GET", "compose.one", { composeId });
    assert.equal(gone.status, 404);
    assert.equal((gone.body as { message: string }).message, "Compose not found");
    const after = await (await emu.snapshot());
    assert.deepEqual(after.composes, []);
    assert.deepEqual(after.volumeDirs, []);
    assert.equal(after.machineProcesses, 0);
    assert.deepEqual(processesWithEnv(`DEVPOD_SSH_PORT=${port}`), [], "no stray machine processes");
    assert.deepEqual(
      await ok(emu, "GET", "docker.getContainersByAppNameMatch", { appName }),
      [],
    );
  } finally {
    await emu.close();
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("delete without volumes keeps them; close() leaves no process behind", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 0 });
  const keysDir = await Deno.makeTempDir();
  const port = freePort();
  try {
    const client = await ed25519(keysDir, "client");
    const { environment } = await ok<{ environment: { environmentId: string } }>(
      emu,
      "POST",
      "project.create",
      { name: "p" },
    );
    const keep = await ok(emu, "POST", "compose.create", {
      name: "keep",
      environmentId: environment.environmentId,
      appName: "keep",
      composeFile: machineCompose({ port, authorizedKey: client.publicKey }),
    });
    await ok(emu, "POST", "compose.deploy", { composeId: keep.composeId });
    await emu.waitIdle();
    assert.equal((await emu.snapshot()).composes[0].composeStatus, "done");
    await ok(emu, "POST", "compose.delete", { composeId: keep.composeId, deleteVolumes: false });
    const left = (await emu.snapshot()).volumeDirs.map((d) => d.split("/").pop());
    assert.deepEqual(left, [`${keep.appName}_docker`, `${keep.appName}_home`]);

    const running = await ok(emu, "POST", "compose.create", {
      name: "running",
      environmentId: environment.environmentId,
      composeFile: machineCompose({ port, authorizedKey: client.publicKey }),
    });
    await ok(emu, "POST", "compose.deploy", { composeId: running.composeId });
    await emu.waitIdle();
    assert.equal((await emu.snapshot()).machineProcesses, 1);
    await waitFor("sshd", () => listening(port));
  } finally {
    await emu.close();
    await Deno.remove(keysDir, { recursive: true });
  }
  assert.deepEqual(processesWithEnv(`DEVPOD_SSH_PORT=${port}`), []);
  assert.equal(await listening(port), false);
});
