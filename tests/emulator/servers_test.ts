/**
 * Remote servers: their rows, monitoring and checks, machines on each server's own
 * loopback address, and a server that goes inactive, unreachable or down mid-test.
 */
import assert from "node:assert/strict";
import { composeEntrypoint } from "../../machine/bootstrap.ts";
import { type Emulator, startEmulator } from "./mod.ts";
import {
  call,
  type KeyPair,
  listening,
  machineCompose,
  machineFixture,
  ok,
  ssh,
  sshBanner,
  waitFor,
} from "./test_support.ts";

const rootOnly = { sanitizeResources: false, sanitizeOps: false, ignore: Deno.uid() !== 0 };

const SSH_REFUSED_2 = "SSH connection error: connect ECONNREFUSED 127.0.0.2:22";

interface ServerRowView {
  serverId: string;
  name: string;
  ipAddress: string;
  port: number;
  username: string;
  appName: string;
  serverStatus: string;
  serverType: string;
  sshKeyId: string | null;
  buildsConcurrency: number;
  createdAt: string;
  totalSum?: number;
  metricsConfig: {
    server: { type: string; port: number; token: string; urlCallback: string };
    containers: unknown;
  };
}

interface Deployment {
  deploymentId: string;
  status: string;
  logPath: string;
  errorMessage: string | null;
}

Deno.test("servers: server.all/one rows, addresses, metricsConfig, validate", async () => {
  const emu = await startEmulator({
    servers: [
      { serverId: "srv-a", name: "Alpha", metrics: { cpuCores: 8, memTotalGiB: 32 } },
      { serverId: "srv-b", name: "Beta", serverStatus: "inactive", serverType: "build" },
      { serverId: "srv-c", name: "Gamma", ipAddress: "127.0.0.2" },
    ],
  });
  try {
    const all = await ok<ServerRowView[]>(emu, "GET", "server.all");
    assert.deepEqual(all.map((s) => [s.serverId, s.ipAddress]), [
      ["srv-a", "127.0.0.3"], // 127.0.0.2 is Gamma's own
      ["srv-b", "127.0.0.4"],
      ["srv-c", "127.0.0.2"],
    ]);
    const [a, b] = all;
    assert.equal(a.port, 22);
    assert.equal(a.username, "root");
    assert.equal(a.serverStatus, "active");
    assert.equal(a.serverType, "deploy");
    assert.equal(a.buildsConcurrency, 1);
    assert.equal(a.totalSum, 0);
    assert.match(a.appName, /^server-alpha-[a-z0-9]{6}$/);
    assert.ok(a.sshKeyId);
    assert.ok(Date.parse(a.createdAt) > Date.parse(b.createdAt), "newest first");
    assert.equal(b.serverStatus, "inactive");
    assert.equal(b.serverType, "build");

    // Monitoring set up: a port and a token; without it, Dokploy's column default.
    assert.equal(a.metricsConfig.server.type, "Remote");
    assert.equal(a.metricsConfig.server.port, 4500);
    assert.match(a.metricsConfig.server.token, /^.{32}$/);
    assert.equal(
      a.metricsConfig.server.urlCallback,
      `${emu.url}/api/trpc/notification.receiveNotification`,
    );
    assert.deepEqual(b.metricsConfig, {
      server: {
        type: "Remote",
        refreshRate: 60,
        port: 4500,
        token: "",
        urlCallback: "",
        retentionDays: 2,
        cronJob: "",
        thresholds: { cpu: 0, memory: 0 },
      },
      containers: { refreshRate: 60, services: { include: [], exclude: [] } },
    });

    const one = await ok<ServerRowView & { sshKey: { privateKey: string }; deployments: [] }>(
      emu,
      "GET",
      "server.one",
      { serverId: "srv-a" },
    );
    assert.equal(one.ipAddress, "127.0.0.3");
    assert.equal(one.sshKey.privateKey, "", "the private key is redacted");
    assert.deepEqual(one.deployments, []);
    assert.equal(one.totalSum, undefined, "totalSum is server.all's");
    const missing = await call(emu, "GET", "server.one", { serverId: "nope" });
    assert.equal(missing.status, 404);
    assert.equal((missing.body as { message: string }).message, "Server not found");

    assert.deepEqual(await ok(emu, "GET", "server.validate", { serverId: "srv-a" }), {
      docker: { version: "28.0.0", enabled: true },
      rclone: { version: "1.60", enabled: true },
      nixpacks: { version: "1.39.0", enabled: true },
      buildpacks: { version: "0.35.0", enabled: true },
      railpack: { version: "0.2.2", enabled: true },
      isDokployNetworkInstalled: true,
      isSwarmInstalled: true,
      isMainDirectoryInstalled: true,
      privilegeMode: "root",
      dockerGroupMember: false,
    });
    const unknown = await call(emu, "GET", "server.validate", { serverId: "nope" });
    assert.equal(unknown.status, 400);
    assert.equal((unknown.body as { message: string }).message, "Server not found");

    // Inactive mid-test: only serverStatus changes.
    await emu.setServer("srv-a", { status: "inactive" });
    assert.equal(
      (await ok(emu, "GET", "server.one", { serverId: "srv-a" })).serverStatus,
      "inactive",
    );
    assert.equal((await emu.snapshot()).servers[0].serverStatus, "inactive");
    await emu.setServer("srv-a", { status: "active" });
    assert.equal(
      (await ok(emu, "GET", "server.one", { serverId: "srv-a" })).serverStatus,
      "active",
    );
    await assert.rejects(() => emu.setServer("nope", { reachable: false }), /no server nope/);

    // Unreachable: validate fails the way serverValidate's ssh2 client does (400).
    await emu.setServer("srv-c", { reachable: false });
    const refused = await call(emu, "GET", "server.validate", { serverId: "srv-c" });
    assert.equal(refused.status, 400);
    assert.equal(
      (refused.body as { message: string }).message,
      "SSH connection error: connect ECONNREFUSED 127.0.0.2:22",
    );
    await emu.setServer("srv-c", { reachable: true });
    assert.equal((await call(emu, "GET", "server.validate", { serverId: "srv-c" })).status, 200);
  } finally {
    await emu.close();
  }
});

Deno.test("servers: getServerMetrics: data points, token, port, no monitoring, unreachable", async () => {
  const emu = await startEmulator({
    servers: [
      { serverId: "srv-m", name: "monitored", metrics: { cpuCores: 4, memTotalGiB: 15.6 } },
      { serverId: "srv-n", name: "plain" },
    ],
  });
  const metrics = (url: string, token: string, dataPoints = "1") =>
    call(emu, "GET", "server.getServerMetrics", { url, token, dataPoints });
  const message = (r: { body: unknown }) => (r.body as { message: string }).message;
  try {
    const server = await ok<ServerRowView>(emu, "GET", "server.one", { serverId: "srv-m" });
    const { port, token } = server.metricsConfig.server;
    const url = `http://${server.ipAddress}:${port}/metrics`;

    const good = await metrics(url, token);
    assert.equal(good.status, 200);
    const points = good.body as Record<string, unknown>[];
    assert.equal(points.length, 1);
    const p = points[0];
    assert.equal(p.cpuCores, 4);
    assert.equal(p.cpuPhysicalCores, 4);
    assert.equal(p.memTotal, "15.60");
    assert.equal(p.cpu, "3.10");
    assert.equal(p.memUsed, "12.50");
    assert.equal(p.memUsedGB, "1.95");
    assert.equal(typeof p.uptime, "number");
    assert.ok(Math.abs(Date.parse(String(p.timestamp)) - Date.now()) < 5000);
    for (const k of ["cpuModel", "os", "distro", "kernel", "arch", "diskUsed", "totalDisk"]) {
      assert.equal(typeof p[k], "string", k);
    }
    // The server has been up an hour and records one point a minute.
    assert.equal(((await metrics(url, token, "5")).body as unknown[]).length, 5);

    await emu.setServer("srv-m", { metrics: { cpuPercent: 97.5, memUsedPercent: 50 } });
    const busy = ((await metrics(url, token)).body as Record<string, unknown>[])[0];
    assert.equal(busy.cpu, "97.50");
    assert.equal(busy.memUsedGB, "7.80");

    const wrongToken = await metrics(url, "not-the-token");
    assert.equal(wrongToken.status, 500);
    assert.equal(
      message(wrongToken),
      "Error 401: Unauthorized. Ensure the container is running and this service is " +
        "included in the monitoring configuration.",
    );
    // An empty token never reaches the handler: the REST adapter drops an empty GET value
    // and zod refuses the missing string (dokploy-api.md §1).
    const noToken = await metrics(url, "");
    assert.equal(noToken.status, 400);
    assert.equal(message(noToken), "Input validation failed");
    assert.equal(
      message(await metrics(`http://${server.ipAddress}:4501/metrics`, token)),
      "fetch failed",
    );
    assert.match(
      message(await metrics(`http://${server.ipAddress}:${port}/other`, token)),
      /^Error 404: Not Found\./,
    );
    assert.match(message(await metrics(url, token, "0")), /^No monitoring data available/);
    assert.equal(message(await metrics("not a url", token)), "Invalid URL");

    const plain = await ok<ServerRowView>(emu, "GET", "server.one", { serverId: "srv-n" });
    // No monitoring there: nothing listens (a token must still be sent: empty is absent).
    const none = await metrics(`http://${plain.ipAddress}:4500/metrics`, "any-token");
    assert.equal(none.status, 500);
    assert.equal(message(none), "fetch failed");

    await emu.setServer("srv-m", { reachable: false });
    const gone = await metrics(url, token);
    assert.equal(gone.status, 500);
    assert.equal(message(gone), "fetch failed");
    await emu.setServer("srv-m", { reachable: true });
    assert.equal((await metrics(url, token)).status, 200);
  } finally {
    await emu.close();
  }
});

/** A machine's compose service on `serverId`, created and deployed (not awaited). */
async function deployMachine(
  emu: Emulator,
  f: { environmentId: string; port: number; client: KeyPair; host: KeyPair },
  serverId: string | null,
  name: string,
  script?: string,
): Promise<{ composeId: string; appName: string }> {
  const m = await ok<{ composeId: string; appName: string }>(emu, "POST", "compose.create", {
    name,
    environmentId: f.environmentId,
    composeType: "docker-compose",
    sourceType: "raw",
    composeFile: machineCompose({ port: f.port, authorizedKey: f.client.publicKey, script }),
    ...(serverId ? { serverId } : {}),
  });
  await ok(emu, "POST", "compose.update", {
    composeId: m.composeId,
    env: `DEVPOD_HOST_KEY_B64=${f.host.privateB64}`,
  });
  await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
  return m;
}

const containersOf = (emu: Emulator, appName: string, serverId?: string) =>
  ok<{ containerId: string; state: string }[]>(emu, "GET", "docker.getContainersByAppNameMatch", {
    appName,
    appType: "docker-compose",
    ...(serverId ? { serverId } : {}),
  });

Deno.test(
  "servers: two servers publish the same port at once, each machine on its own address",
  rootOnly,
  async () => {
    const emu = await startEmulator({
      deployDelayMs: 0,
      servers: [
        { serverId: "srv-1", name: "one" },
        // Inactive: Dokploy still deploys there when asked.
        { serverId: "srv-2", name: "two", serverStatus: "inactive" },
        { serverId: "srv-far", name: "far", ipAddress: "203.0.113.7" },
      ],
    });
    const keysDir = await Deno.makeTempDir();
    try {
      const f = await machineFixture(emu, keysDir, "p", ["127.0.0.2", "127.0.0.3"]);
      const one = await deployMachine(emu, f, "srv-1", "one");
      // The real bootstrap (supervise mode) listens where DEVPOD_SSHD_LISTEN says.
      const two = await deployMachine(emu, f, "srv-2", "two", composeEntrypoint()[2]);
      await emu.waitIdle();
      const snap = await emu.snapshot();
      assert.deepEqual(
        snap.composes.map((c) => [c.composeStatus, c.container.state, c.publishedAddress]),
        [["done", "running", "127.0.0.2"], ["done", "running", "127.0.0.3"]],
      );
      assert.equal(snap.composes[0].publishedPort, f.port);
      assert.equal(snap.composes[1].publishedPort, f.port);
      assert.equal(snap.machineProcesses, 2);

      // Each answers on its own address; the Dokploy host's address has nothing there.
      await waitFor(
        "both sshd",
        async () => await listening(f.port, "127.0.0.2") && await listening(f.port, "127.0.0.3"),
      );
      assert.equal(await listening(f.port, "127.0.0.1"), false);
      const a = await ssh(
        f.port,
        f.client.privatePath,
        f.knownHosts,
        "echo one > ~/who",
        "127.0.0.2",
      );
      assert.equal(a.code, 0, a.stderr);
      const fromTwo = await ssh(
        f.port,
        f.client.privatePath,
        f.knownHosts,
        "test -e ~/who || echo another home",
        "127.0.0.3",
      );
      assert.equal(fromTwo.stdout, "another home\n", fromTwo.stderr);
      const fromOne = await ssh(
        f.port,
        f.client.privatePath,
        f.knownHosts,
        "cat ~/who",
        "127.0.0.2",
      );
      assert.equal(fromOne.stdout, "one\n", fromOne.stderr);

      // docker ps runs on the server asked.
      assert.equal((await containersOf(emu, one.appName, "srv-1")).length, 1);
      assert.deepEqual(await containersOf(emu, one.appName, "srv-2"), []);
      assert.deepEqual(await containersOf(emu, one.appName), []);
      assert.deepEqual(await containersOf(emu, one.appName, "nope"), []);
      assert.equal((await containersOf(emu, two.appName, "srv-2"))[0].state, "running");

      // On one server's address the port is taken.
      const clash = await deployMachine(emu, f, "srv-1", "clash");
      await emu.waitIdle();
      const [d] = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", {
        composeId: clash.composeId,
      });
      assert.equal(d.status, "error");
      const log = await ok<string>(emu, "GET", "deployment.readLogs", {
        deploymentId: d.deploymentId,
      });
      assert.match(
        log,
        new RegExp(`Bind for 0\\.0\\.0\\.0:${f.port} failed: port is already allocated`),
      );

      // A server whose ipAddress is not loopback cannot run a machine here.
      const far = await deployMachine(emu, f, "srv-far", "far");
      await emu.waitIdle();
      const [dFar] = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", {
        composeId: far.composeId,
      });
      assert.equal(dFar.status, "error");
      assert.match(
        await ok<string>(emu, "GET", "deployment.readLogs", { deploymentId: dFar.deploymentId }),
        /emulator: a machine cannot listen on 203\.0\.113\.7/,
      );
      const serverOf = Object.fromEntries(
        (await ok<ServerRowView[]>(emu, "GET", "server.all")).map((s) => [s.serverId, s.totalSum]),
      );
      assert.deepEqual(serverOf, { "srv-1": 2, "srv-2": 1, "srv-far": 1 });
    } finally {
      await emu.close();
      await Deno.remove(keysDir, { recursive: true });
    }
  },
);

Deno.test(
  "servers: an unreachable server: each procedure as Dokploy answers, then recovery",
  rootOnly,
  async () => {
    const emu = await startEmulator({
      deployDelayMs: 300,
      servers: [{ serverId: "srv-1", name: "one", metrics: { cpuCores: 2, memTotalGiB: 4 } }],
    });
    const keysDir = await Deno.makeTempDir();
    const message = (r: { body: unknown }) => (r.body as { message: string }).message;
    try {
      const f = await machineFixture(emu, keysDir, "p", ["127.0.0.2"]);
      const m = await deployMachine(emu, f, "srv-1", "m");
      await emu.waitIdle();
      await waitFor("sshd", () => listening(f.port, "127.0.0.2"));
      const [first] = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", {
        composeId: m.composeId,
      });
      assert.equal(first.status, "done");
      const [container] = await containersOf(emu, m.appName, "srv-1");

      await emu.setServer("srv-1", { reachable: false });
      assert.deepEqual((await emu.snapshot()).servers[0], {
        serverId: "srv-1",
        name: "one",
        ipAddress: "127.0.0.2",
        serverStatus: "active",
        reachable: false,
        machinesDown: false,
      });
      // Dokploy cannot see it; the machine itself still answers SSH.
      assert.deepEqual(await containersOf(emu, m.appName, "srv-1"), []);
      const hi = await ssh(f.port, f.client.privatePath, f.knownHosts, "echo hi", "127.0.0.2");
      assert.equal(hi.stdout, "hi\n", hi.stderr);

      const start = await call(emu, "POST", "compose.start", { composeId: m.composeId });
      assert.equal(start.status, 500);
      assert.equal(message(start), SSH_REFUSED_2);
      assert.equal((await emu.snapshot()).composes[0].composeStatus, "idle");
      const stop = await call(emu, "POST", "compose.stop", { composeId: m.composeId });
      assert.equal(stop.status, 500);
      assert.equal(message(stop), SSH_REFUSED_2);
      assert.equal((await emu.snapshot()).composes[0].composeStatus, "error");
      assert.equal((await emu.snapshot()).composes[0].container.state, "running");
      const logs = await call(emu, "GET", "compose.readLogs", {
        composeId: m.composeId,
        containerId: `${m.appName}-machine-1`,
      });
      assert.equal(logs.status, 500);
      assert.equal(message(logs), SSH_REFUSED_2);
      const oldLog = await call(emu, "GET", "deployment.readLogs", {
        deploymentId: first.deploymentId,
      });
      assert.equal(oldLog.status, 500);
      assert.equal(message(oldLog), SSH_REFUSED_2);

      // A deploy is queued; Dokploy cannot make its log, so the deployment is an error
      // without a log, its reason in errorMessage.
      for (const kind of ["compose.deploy", "compose.redeploy"]) {
        assert.equal((await call(emu, "POST", kind, { composeId: m.composeId })).status, 200);
        await emu.waitIdle();
        const [d] = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", {
          composeId: m.composeId,
        });
        assert.equal(d.status, "error", kind);
        assert.equal(d.logPath, "");
        assert.equal(d.errorMessage, `An error have occurred: ${SSH_REFUSED_2}`);
        assert.equal(
          await ok(emu, "GET", "deployment.readLogs", { deploymentId: d.deploymentId }),
          "",
        );
        assert.equal((await emu.snapshot()).composes[0].composeStatus, "error");
      }
      const validate = await call(emu, "GET", "server.validate", { serverId: "srv-1" });
      assert.equal(validate.status, 400);
      assert.equal(message(validate), SSH_REFUSED_2);
      const row = await ok<ServerRowView>(emu, "GET", "server.one", { serverId: "srv-1" });
      const metrics = await call(emu, "GET", "server.getServerMetrics", {
        url: `http://127.0.0.2:4500/metrics`,
        token: row.metricsConfig.server.token,
        dataPoints: "1",
      });
      assert.equal(metrics.status, 500);
      assert.equal(message(metrics), "fetch failed");

      // Reachable again: everything works on the same machine.
      await emu.setServer("srv-1", { reachable: true });
      const again = await containersOf(emu, m.appName, "srv-1");
      assert.deepEqual(again.map((c) => [c.containerId, c.state]), [[
        container.containerId,
        "running",
      ]]);
      assert.match(
        await ok<string>(emu, "GET", "deployment.readLogs", { deploymentId: first.deploymentId }),
        /Docker Compose Deployed/,
      );
      assert.equal(await ok(emu, "POST", "compose.stop", { composeId: m.composeId }), true);
      assert.equal((await emu.snapshot()).composes[0].container.state, "exited");
      assert.equal(await ok(emu, "POST", "compose.start", { composeId: m.composeId }), true);
      await waitFor("sshd again", () => listening(f.port, "127.0.0.2"));
      assert.equal((await call(emu, "GET", "server.validate", { serverId: "srv-1" })).status, 200);

      // Gone mid-deploy: the step that runs compose fails over SSH, and so does the one
      // that would record the failure, so the deployment stays `running` for good.
      await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
      await waitFor(
        "deploying",
        async () => (await emu.snapshot()).composes[0].composeStatus === "running",
      );
      await emu.setServer("srv-1", { reachable: false });
      await emu.waitIdle();
      const [stuck] = await ok<Deployment[]>(emu, "GET", "deployment.allByCompose", {
        composeId: m.composeId,
      });
      assert.equal(stuck.status, "running");
      assert.equal((await emu.snapshot()).composes[0].composeStatus, "running");

      // Deleted while unreachable: the row goes, nothing happens on the server.
      const del = await call(emu, "POST", "compose.delete", {
        composeId: m.composeId,
        deleteVolumes: true,
      });
      assert.equal(del.status, 200);
      assert.equal((await call(emu, "GET", "compose.one", { composeId: m.composeId })).status, 404);
      const snap = await emu.snapshot();
      assert.deepEqual(snap.composes, []);
      assert.equal(snap.machineProcesses, 1, "the machine keeps running, now an orphan");
      assert.ok(snap.volumeDirs.some((d) => d.endsWith(`${m.appName}_home`)));
      const still = await ssh(
        f.port,
        f.client.privatePath,
        f.knownHosts,
        "echo still",
        "127.0.0.2",
      );
      assert.equal(still.stdout, "still\n", still.stderr);
      await emu.setServer("srv-1", { reachable: true });
      assert.equal((await containersOf(emu, m.appName, "srv-1"))[0].state, "running");
    } finally {
      await emu.close();
      await Deno.remove(keysDir, { recursive: true });
    }
  },
);

Deno.test(
  "servers: machinesDown freezes a server's machines; they resume as they were",
  rootOnly,
  async () => {
    const emu = await startEmulator({
      deployDelayMs: 0,
      servers: [{ serverId: "srv-1", name: "one" }],
    });
    const keysDir = await Deno.makeTempDir();
    try {
      const f = await machineFixture(emu, keysDir, "p", ["127.0.0.1", "127.0.0.2"]);
      const remote = await deployMachine(emu, f, "srv-1", "remote");
      await deployMachine(emu, f, null, "local");
      await emu.waitIdle();
      await waitFor(
        "sshd",
        async () => await listening(f.port, "127.0.0.1") && await listening(f.port, "127.0.0.2"),
      );
      const mark = await ssh(
        f.port,
        f.client.privatePath,
        f.knownHosts,
        "echo kept > ~/m",
        "127.0.0.2",
      );
      assert.equal(mark.code, 0, mark.stderr);
      const [before] = await containersOf(emu, remote.appName, "srv-1");
      assert.match(await sshBanner("127.0.0.2", f.port) ?? "", /^SSH-2\.0-/);

      await emu.setServer("srv-1", { machinesDown: true });
      assert.equal(await sshBanner("127.0.0.2", f.port, 1500), null, "the server went away");
      assert.match(await sshBanner("127.0.0.1", f.port) ?? "", /^SSH-2\.0-/, "others unaffected");
      const snap = await emu.snapshot();
      assert.equal(snap.servers[0].machinesDown, true);
      assert.equal(snap.composes[0].container.state, "running", "docker still has it running");

      await emu.setServer("srv-1", { machinesDown: false });
      await waitFor("banner again", async () => await sshBanner("127.0.0.2", f.port) !== null);
      const back = await ssh(f.port, f.client.privatePath, f.knownHosts, "cat ~/m", "127.0.0.2");
      assert.equal(back.stdout, "kept\n", back.stderr);
      const [after] = await containersOf(emu, remote.appName, "srv-1");
      assert.equal(after.containerId, before.containerId, "the same container, not restarted");
      const log = await Deno.readTextFile(
        `${emu.dataDir}/machines/${remote.appName}/container.log`,
      );
      assert.equal(log.match(/^\[emulator\] \S+ starting /gm)?.length, 1, "started once");

      // A stop reaches a frozen machine; close() ends frozen ones too.
      await emu.setServer("srv-1", { machinesDown: true });
      const t = performance.now();
      assert.equal(await ok(emu, "POST", "compose.stop", { composeId: remote.composeId }), true);
      assert.ok(performance.now() - t < 5000, "sshd got SIGTERM");
      assert.equal(await ok(emu, "POST", "compose.start", { composeId: remote.composeId }), true);
      assert.equal(await sshBanner("127.0.0.2", f.port, 1000), null, "started on a down server");
    } finally {
      await emu.close();
      await Deno.remove(keysDir, { recursive: true });
    }
  },
);
