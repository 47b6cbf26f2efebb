/**
 * Services that are not machines (the image cache of issue 11) and compose networks on
 * the host runtime: a recorded `registry` container, networks created by deploys and
 * removed with their app, a missing external network failing a deploy as compose v2 says.
 */
import assert from "node:assert/strict";
import { renderDotenv } from "./compose_files.ts";
import { startEmulator } from "./mod.ts";
import { HostRuntime } from "./machine/host_runtime.ts";
import { type ComposeApp, MachineError } from "./machine/runtime.ts";
import {
  cacheCompose,
  call,
  ed25519,
  freePort,
  listening,
  machineCompose,
  ok,
  waitFor,
} from "./test_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const asRoot = { ...opts, ignore: Deno.uid() !== 0 };

interface Deployment {
  deploymentId: string;
  status: string;
}

async function lastDeployment(
  emu: { url: string; token: string },
  composeId: string,
): Promise<Deployment & { log: string }> {
  const list = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", { composeId });
  const log = await ok<string>(emu, "GET", "deployment.readLogs", {
    deploymentId: list[0].deploymentId,
  });
  return { ...list[0], log };
}

async function environment(emu: { url: string; token: string }): Promise<string> {
  const { environment } = await ok<{ environment: { environmentId: string } }>(
    emu,
    "POST",
    "project.create",
    { name: "devpod-workspaces" },
  );
  return environment.environmentId;
}

Deno.test("image cache: a recorded registry container, not a machine", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 0 });
  try {
    const environmentId = await environment(emu);
    const cache = await ok<{ composeId: string; appName: string }>(
      emu,
      "POST",
      "compose.create",
      { name: "devpod-image-cache", appName: "devpod-image-cache", environmentId },
    );
    const { composeId, appName } = cache;
    await ok(emu, "POST", "compose.update", { composeId, composeFile: cacheCompose() });
    await ok(emu, "POST", "compose.deploy", { composeId });
    await emu.waitIdle();
    const d = await lastDeployment(emu, composeId);
    assert.equal(d.status, "done", d.log);
    // `${APP_NAME}` filled from Dokploy's .env: the network is named after the app.
    assert.match(d.log, new RegExp(` Network ${appName} {2}Created`));
    assert.match(d.log, new RegExp(` Volume "${appName}_cache" {2}Created`));
    assert.match(d.log, / registry Pulled/);
    assert.match(d.log, new RegExp(` Container ${appName}-registry-1 {2}Started`));

    const ps = () =>
      ok<{ containerId: string; name: string; state: string; status: string }[]>(
        emu,
        "GET",
        "docker.getContainersByAppNameMatch",
        { appName, appType: "docker-compose" },
      );
    const [row] = await ps();
    assert.equal(row.name, `${appName}-registry-1`);
    assert.equal(row.state, "running");
    assert.match(row.status, /^Up /);
    assert.match(row.containerId, /^[0-9a-f]{12}$/);

    let snap = await emu.snapshot();
    assert.deepEqual(snap.composes[0].container, { state: "running", exitCode: null });
    assert.equal(snap.composes[0].publishedPort, null);
    assert.deepEqual(snap.composes[0].volumes, [`${appName}_cache`]);
    assert.deepEqual(snap.networks, [{ name: appName, serverId: null, project: appName }]);
    assert.equal(snap.machineProcesses, 0, "a cache is not a machine");

    // Its log: nothing (it runs nothing); a search finds no line, which Dokploy's grep fails.
    const logs = (search?: string) =>
      call(emu, "GET", "compose.readLogs", {
        composeId,
        containerId: `${appName}-registry`,
        tail: 100,
        ...(search ? { search } : {}),
      });
    assert.deepEqual(await logs(), { status: 200, body: "" });
    assert.equal((await logs("devpod-image-cache size")).status, 500);

    // Unchanged redeploy: the same container keeps running.
    await ok(emu, "POST", "compose.redeploy", { composeId });
    await emu.waitIdle();
    assert.match(
      (await lastDeployment(emu, composeId)).log,
      new RegExp(` Container ${appName}-registry-1 {2}Running`),
    );
    assert.equal((await ps())[0].containerId, row.containerId);

    assert.equal(await ok(emu, "POST", "compose.stop", { composeId }), true);
    const [stopped] = await ps();
    assert.equal(stopped.state, "exited");
    assert.match(stopped.status, /^Exited \(0\) /);
    assert.equal((await logs()).status, 500, "no running container to read");
    assert.deepEqual(
      (await emu.snapshot()).networks.map((n) => n.name),
      [appName],
      "stop keeps the network",
    );

    assert.equal(await ok(emu, "POST", "compose.start", { composeId }), true);
    assert.equal((await ps())[0].state, "running");

    await ok(emu, "POST", "compose.delete", { composeId, deleteVolumes: true });
    snap = await emu.snapshot();
    assert.deepEqual(await ps(), []);
    assert.deepEqual(snap.networks, [], "down removes the project's network");
    assert.deepEqual(snap.volumeDirs, []);
  } finally {
    await emu.close();
  }
});

Deno.test(
  "networks: a machine's missing external network fails its deploy; the cache's lets it deploy",
  asRoot,
  async () => {
    const emu = await startEmulator({ deployDelayMs: 0 });
    const keysDir = await Deno.makeTempDir();
    try {
      const environmentId = await environment(emu);
      const client = await ed25519(keysDir, "client");
      const cache = await ok<{ composeId: string; appName: string }>(
        emu,
        "POST",
        "compose.create",
        {
          name: "devpod-image-cache",
          appName: "devpod-image-cache",
          environmentId,
          composeFile: cacheCompose(),
        },
      );
      const port = freePort();
      const machine = await ok<{ composeId: string; appName: string }>(
        emu,
        "POST",
        "compose.create",
        {
          name: "machine",
          environmentId,
          composeFile: machineCompose({
            port,
            authorizedKey: client.publicKey,
            externalNetworks: [cache.appName],
          }),
        },
      );

      // The cache was never deployed: its network does not exist.
      await ok(emu, "POST", "compose.deploy", { composeId: machine.composeId });
      await emu.waitIdle();
      const failed = await lastDeployment(emu, machine.composeId);
      assert.equal(failed.status, "error");
      const missing = `network ${cache.appName} declared as external, but could not be found`;
      assert.ok(failed.log.includes(`\n${missing}\n`), failed.log);
      assert.match(failed.log, /Error: ❌ Docker command failed$/);
      let snap = await emu.snapshot();
      const machineRow = () => snap.composes.find((c) => c.composeId === machine.composeId)!;
      assert.equal(machineRow().composeStatus, "error");
      assert.equal(machineRow().container.state, "none");
      assert.equal(snap.machineProcesses, 0);
      // compose.start runs the same `up`: a 500 with compose's words.
      const start = await call(emu, "POST", "compose.start", { composeId: machine.composeId });
      assert.equal(start.status, 500);
      assert.ok((start.body as { message: string }).message.includes(missing));

      await ok(emu, "POST", "compose.deploy", { composeId: cache.composeId });
      await ok(emu, "POST", "compose.deploy", { composeId: machine.composeId });
      await emu.waitIdle();
      assert.equal((await lastDeployment(emu, cache.composeId)).status, "done");
      assert.equal((await lastDeployment(emu, machine.composeId)).status, "done");
      await waitFor("machine's sshd", () => listening(port));
      snap = await emu.snapshot();
      const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
      assert.deepEqual(
        snap.networks,
        [
          { name: cache.appName, serverId: null, project: cache.appName },
          { name: `${machine.appName}_machine`, serverId: null, project: machine.appName },
        ].sort(byName),
      );
      assert.equal(snap.machineProcesses, 1, "the machine counts, the cache does not");

      // Deleting the cache under a running machine: docker keeps the network in use
      // (Dokploy ignores the error); containers and volume go.
      await ok(emu, "POST", "compose.delete", { composeId: cache.composeId, deleteVolumes: true });
      snap = await emu.snapshot();
      assert.deepEqual(
        snap.networks.map((n) => n.name),
        [cache.appName, `${machine.appName}_machine`].sort(),
      );
      assert.ok(!snap.volumeDirs.some((d) => d.endsWith(`/${cache.appName}_cache`)));
      assert.equal(snap.machineProcesses, 1);

      // The machine gone, its own network goes; the orphaned one stays, as in docker.
      await ok(emu, "POST", "compose.delete", {
        composeId: machine.composeId,
        deleteVolumes: true,
      });
      assert.deepEqual((await emu.snapshot()).networks.map((n) => n.name), [cache.appName]);
    } finally {
      await emu.close();
      await Deno.remove(keysDir, { recursive: true });
    }
  },
);

/** Writes what Dokploy writes for a deploy: the compose file and its `.env`. */
async function writeApp(
  base: string,
  appName: string,
  composeFile: string,
  serverId: string | null = null,
): Promise<ComposeApp> {
  const app = { appName, dir: `${base}/compose/${appName}`, serverId };
  await Deno.mkdir(`${app.dir}/code`, { recursive: true });
  await Deno.writeTextFile(`${app.dir}/code/docker-compose.yml`, composeFile);
  await Deno.writeTextFile(`${app.dir}/code/.env`, renderDotenv(appName, null));
  return app;
}

/** A non-machine service joining `networks` (declared external) or the default network. */
function consumer(networks: string[] = []): string {
  if (!networks.length) return "services:\n  app:\n    image: busybox\n";
  return [
    "services:",
    "  app:",
    "    image: busybox",
    `    networks: ${JSON.stringify(networks)}`,
    "networks:",
    ...networks.map((n) => `  ${n}: { external: true }`),
    "",
  ].join("\n");
}

Deno.test(
  "host runtime: networks per server, removed with their app unless in use",
  opts,
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "emulator-networks-" });
    const rt = new HostRuntime({ dataDir, stopGraceMs: 100 });
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    try {
      // dokploy-network exists on every server, made by Dokploy itself.
      const onHost = await writeApp(dataDir, "dn-host", consumer(["dokploy-network"]));
      const onSrv = await writeApp(dataDir, "dn-srv", consumer(["dokploy-network"]), "srv-1");
      await rt.deploy(onHost, log);
      await rt.deploy(onSrv, log);
      assert.deepEqual(await rt.networks(), [], "dokploy-network is not the deploys'");

      const cache = await writeApp(dataDir, "cache-1", cacheCompose(), "srv-1");
      await rt.deploy(cache, log);
      assert.deepEqual(await rt.networks(), [
        { name: "cache-1", serverId: "srv-1", project: "cache-1" },
      ]);

      // Networks are per server: the Dokploy host has no cache-1.
      const elsewhere = await writeApp(dataDir, "user-host", consumer(["cache-1"]));
      lines.length = 0;
      await assert.rejects(
        rt.deploy(elsewhere, log),
        (e: Error) => {
          assert.ok(e instanceof MachineError);
          assert.equal(e.message, "network cache-1 declared as external, but could not be found");
          return true;
        },
      );
      assert.ok(!lines.some((l) => l.includes("Container")), "no container was made");
      assert.deepEqual(await rt.containers("user-host"), []);

      const user = await writeApp(dataDir, "user-2", consumer(["cache-1"]), "srv-1");
      await rt.deploy(user, log);
      assert.equal((await rt.containers("user-2"))[0].state, "running");

      // down while another app's running container uses the network: docker refuses
      // that network; the containers and the volume go anyway.
      await assert.rejects(
        rt.remove(cache, { volumes: true }),
        /^MachineError: failed to remove network cache-1: Error response from daemon: error while removing network: network cache-1 has active endpoints \(name:"user-2-app-1" id:"[0-9a-f]{12}"\)$/,
      );
      assert.deepEqual(await rt.containers("cache-1"), []);
      assert.deepEqual((await rt.view("cache-1")).volumes, []);
      assert.deepEqual((await rt.networks()).map((n) => n.name), ["cache-1"]);

      // Once no running container uses it, down removes it (found by its label).
      await rt.stop(user);
      await rt.remove(cache, { volumes: true });
      assert.deepEqual(await rt.networks(), []);
      await assert.rejects(rt.start(user), /network cache-1 declared as external/);

      // A service with no networks joins `<app>_default`, which goes with its app.
      const plain = await writeApp(dataDir, "plain", consumer());
      lines.length = 0;
      await rt.deploy(plain, log);
      assert.ok(lines.includes(" Network plain_default  Created"), lines.join("\n"));
      assert.deepEqual((await rt.networks()).map((n) => n.name), ["plain_default"]);
      await rt.remove(plain, { volumes: false });
      assert.deepEqual(await rt.networks(), []);
      assert.equal(await rt.liveMachines(), 0, "recorded containers are not machines");
    } finally {
      await rt.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);
