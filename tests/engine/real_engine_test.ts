/**
 * Machines on a real Docker engine: the compose file the provider renders, deployed with
 * Dokploy's own command lines, the bootstrap as PID 1, Docker's restart policy, named
 * volumes, limits and a nested dockerd. Every verb runs as DevPod runs it
 * (`deno run mod.ts <verb>` with DevPod's environment).
 *
 * Ends with one figure line:
 *   real engine: N machines, M containers started, nested container ran: yes|no
 */
import assert from "node:assert/strict";
import { randomBytes, sha256Hex } from "../e2e/harness.ts";
import {
  type EngineWorld,
  eventually,
  inspectMachine,
  leftovers,
  saveImage,
  startEngineWorld,
} from "./world.ts";

const figures = { machines: new Set<string>(), nestedRan: false };
/**
 * Machine ids unique to this test process: the engine may be shared with another run of
 * the suite, and everything here is looked up by these ids or by our app names.
 */
const RUN = Deno.pid.toString(36);
const m = (name: string) => `eng-${name}-${RUN}`;
const ONE_WORD = /^(Running|Busy|Stopped|NotFound)\n$/;
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };

async function create(w: EngineWorld, id: string, env: Record<string, string> = {}) {
  figures.machines.add(id);
  const r = await w.run("create", id, { env });
  assert.equal(r.code, 0, `create ${id} failed:\n${r.stderr}`);
  return r;
}

async function status(w: EngineWorld, id: string, env: Record<string, string> = {}) {
  const r = await w.run("status", id, { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdoutText, ONE_WORD);
  return r.stdoutText.trim();
}

async function sh(w: EngineWorld, id: string, command: string, env: Record<string, string> = {}) {
  const r = await w.run("command", id, { command, env });
  assert.equal(r.code, 0, `command ${JSON.stringify(command)} failed:\n${r.stderr}`);
  return r.stdoutText;
}

async function appNameOf(w: EngineWorld, id: string): Promise<string> {
  const state = JSON.parse(await Deno.readTextFile(`${w.folder(id)}/state.json`));
  return state.appName;
}

/** The first of `n` consecutive loopback ports nothing listens on (below the ephemeral range). */
function freeRun(n: number): number {
  const bindable = (port: number) => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return true;
    } catch {
      return false;
    }
  };
  for (let tries = 0; tries < 200; tries++) {
    const from = 20_000 + Math.floor(Math.random() * 10_000);
    if (Array.from({ length: n }, (_, i) => from + i).every(bindable)) return from;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

let world: EngineWorld;

/**
 * Container starts (restarts included), watched live: dockerd keeps only its last 256
 * events for a later `docker events --since`, too few when runs share the engine.
 */
class StartWatch {
  #child: Deno.ChildProcess;
  #ids: Promise<string[]>;
  constructor(w: EngineWorld) {
    this.#child = new Deno.Command(w.engine.cli, {
      args: [
        "events",
        "--filter",
        "event=start",
        "--filter",
        "label=dev.devpod.provider=devpod-provider-dokploy",
        "--format",
        '{{index .Actor.Attributes "dev.devpod.machine-id"}}',
      ],
      env: { DOCKER_HOST: w.engine.host },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#ids = new Response(this.#child.stdout).text().then((t) => t.split("\n"));
  }
  /** Stops watching; the machine ids of every start seen. */
  async stop(): Promise<string[]> {
    this.#child.kill("SIGTERM");
    await this.#child.status;
    return await this.#ids;
  }
}
let starts: StartWatch;

Deno.test({
  name: "real engine: set-up (engine, images, emulator)",
  ...NO_SANITIZE,
  async fn() {
    world = await startEngineWorld();
    starts = new StartWatch(world);
    const prebuilt = await world.docker(["image", "inspect", world.images.machine]);
    assert.equal(prebuilt.code, 0, "the prebuilt machine image was built here");
  },
});

Deno.test({
  name: "real engine: lifecycle, data and nested images survive stop/start, dind, delete",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    const id = m("life");
    await t.step("create: SSH with the pinned key on the published port", async () => {
      await create(w, id);
      assert.equal(await status(w, id), "Running");
      assert.equal(await sh(w, id, "id -un"), "devpod\n");
      const c = await inspectMachine(w, id);
      assert.equal(c.State.Status, "running");
      assert.equal(c.HostConfig.RestartPolicy.Name, "on-failure");
      assert.equal(c.HostConfig.Privileged, true, "dind runs privileged");
    });

    await t.step("the prebuilt image boots with no package manager run", async () => {
      const logs = await w.docker(["logs", (await inspectMachine(w, id)).Id]);
      const text = logs.stdout + logs.stderr;
      assert.match(text, /packages: nothing to install/);
      assert.doesNotMatch(text, /packages: installing/);
      assert.match(text, /docker: ready in/);
    });

    await t.step("4 MiB of random bytes round-trip through the tunnel", async () => {
      const data = randomBytes(4 * 1024 * 1024);
      const r = await w.run("command", id, { command: "cat", stdin: data });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256Hex(r.stdout), await sha256Hex(data));
    });

    await t.step("dind: the nested engine runs a container from a loaded image", async () => {
      const machine = (await inspectMachine(w, id)).Id;
      const saved = await saveImage(w, w.images.tiny);
      const load = await w.docker(["exec", "-i", machine, "docker", "load"], {
        stdin: saved.stdout,
      });
      assert.equal(load.code, 0, load.stderr);
      const out = await sh(
        w,
        id,
        `docker run --rm --network none ${w.images.tiny} echo nested-ok && echo kept > ~/kept.txt`,
      );
      assert.equal(out, "nested-ok\n");
      figures.nestedRan = true;
    });

    await t.step("stop: the container exits, status says Stopped, volumes stay", async () => {
      const r = await w.run("stop", id);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await inspectMachine(w, id)).State.Status, "exited");
      assert.equal(await status(w, id), "Stopped");
      const left = await leftovers(w, await appNameOf(w, id));
      assert.equal(left.volumes.length, 2, "home and docker volumes kept");
    });

    await t.step("start: home file and nested image are still there", async () => {
      const r = await w.run("start", id);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await status(w, id), "Running");
      assert.equal(await sh(w, id, "cat ~/kept.txt"), "kept\n");
      const out = await sh(w, id, `docker run --rm --network none ${w.images.tiny} echo again`);
      assert.equal(out, "again\n", "the nested image survived on the docker volume");
    });

    await t.step("delete leaves no container, volume or network", async () => {
      const appName = await appNameOf(w, id);
      const r = await w.run("delete", id);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await status(w, id), "NotFound");
      assert.deepEqual(await leftovers(w, appName), { containers: [], volumes: [], networks: [] });
    });
  },
});

Deno.test({
  name: "real engine: idle stop stays stopped, a crash is restarted",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    // No shared SSH connection: it would count as a session for its 15 s.
    const idle = { INACTIVITY_TIMEOUT: "3s", SSH_REUSE_CONNECTIONS: "false" };
    await Promise.all([create(w, m("idle"), idle), create(w, m("crash"))]);

    await t.step("idle: PID 1 exits 0 and Docker does not restart it", async () => {
      const c = await eventually("the idle machine to stop itself", async () => {
        const c = await inspectMachine(w, m("idle"));
        return c.State.Status === "exited" && c;
      }, 60_000);
      assert.equal(c.State.ExitCode, 0);
      await new Promise((r) => setTimeout(r, 3000));
      const later = await inspectMachine(w, m("idle"));
      assert.equal(later.State.Status, "exited", "on-failure leaves an exit 0 stopped");
      assert.equal(later.RestartCount, 0);
      assert.equal(await status(w, m("idle"), idle), "Stopped");
      const r = await w.run("start", m("idle"), { env: idle });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sh(w, m("idle"), "echo back", idle), "back\n");
    });

    await t.step("crash: sshd killed, Docker restarts the machine", async () => {
      const before = await inspectMachine(w, m("crash"));
      const killSshd = "for d in /proc/[0-9]*; do " +
        '[ "$(cat $d/comm 2>/dev/null)" = sshd ] && ' +
        '[ "$(cut -d" " -f4 $d/stat)" = 1 ] && kill -9 "${d#/proc/}"; done; true';
      const k = await w.docker(["exec", before.Id, "sh", "-c", killSshd]);
      assert.equal(k.code, 0, k.stderr);
      const after = await eventually("Docker to restart the machine", async () => {
        const c = await inspectMachine(w, m("crash"));
        return c.RestartCount >= 1 && c.State.Status === "running" && c;
      }, 60_000);
      assert.equal(after.Id, before.Id, "the same container, restarted");
      const back = await eventually("SSH after the restart", async () => {
        const r = await w.run("command", m("crash"), { command: "echo alive" });
        return r.code === 0 && r.stdoutText;
      }, 60_000);
      assert.equal(back, "alive\n");
    });

    for (const id of [m("idle"), m("crash")]) {
      const r = await w.run("delete", id, { env: idle });
      assert.equal(r.code, 0, r.stderr);
    }
  },
});

Deno.test({
  name: "real engine: sizes, DOCKER_MODE=none, KEEP_VOLUMES",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    const sized = { MACHINE_CPUS: "1.5", MACHINE_MEMORY: "768m", DOCKER_MODE: "none" };
    const preset = { MACHINE_TYPE: "small", KEEP_VOLUMES: "true" };
    await Promise.all([create(w, m("size"), sized), create(w, m("keep"), preset)]);

    const s = await inspectMachine(w, m("size"));
    assert.equal(s.HostConfig.NanoCpus, 1.5e9);
    assert.equal(s.HostConfig.Memory, 768 * 1024 * 1024);
    assert.equal(s.HostConfig.Privileged, false, "DOCKER_MODE=none is unprivileged");
    const dockerd = 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = dockerd ] && ' +
      "echo dockerd; done; echo checked";
    assert.equal(await sh(w, m("size"), dockerd, sized), "checked\n", "no dockerd runs");

    const k = await inspectMachine(w, m("keep"));
    assert.equal(k.HostConfig.NanoCpus, 2e9, "small preset: 2 CPUs");
    assert.equal(k.HostConfig.Memory, 4096 * 1024 * 1024, "small preset: 4 GiB");

    const keepApp = await appNameOf(w, m("keep"));
    await sh(w, m("keep"), "echo precious > ~/data.txt", preset);
    for (const [id, env] of [[m("size"), sized], [m("keep"), preset]] as const) {
      const r = await w.run("delete", id, { env });
      assert.equal(r.code, 0, r.stderr);
    }
    const kept = await leftovers(w, keepApp);
    assert.deepEqual(kept.containers, [], "the machine is gone");
    assert.equal(kept.volumes.length, 2, "KEEP_VOLUMES keeps home and docker volumes");
    const home = kept.volumes.find((v) => v.endsWith("_home"))!;
    const dir = (await w.docker(["volume", "inspect", "--format", "{{.Mountpoint}}", home])).stdout;
    assert.equal(await Deno.readTextFile(`${dir.trim()}/data.txt`), "precious\n");
  },
});

Deno.test({
  name: "real engine: a port held by a foreign container makes create move",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    const from = freeRun(4);
    const range = { SSH_PORT_RANGE: `${from}-${from + 3}` };
    const foreignLabel = `dev.devpod.test=foreign-${Deno.pid}`;
    try {
      for (const port of [from, from + 1, from + 2]) {
        const r = await w.docker([
          "run",
          "-d",
          "--label",
          foreignLabel,
          "-p",
          `127.0.0.1:${port}:80`,
          w.images.tiny,
          "sleep",
          "600",
        ]);
        assert.equal(r.code, 0, r.stderr);
      }
      await create(w, m("port"), range);
      const state = JSON.parse(await Deno.readTextFile(`${w.folder(m("port"))}/state.json`));
      assert.equal(state.sshPort, from + 3, "the one free port of the range");
      assert.equal(await sh(w, m("port"), "echo moved", range), "moved\n");
      const r = await w.run("delete", m("port"), { env: range });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      // A container that failed to start still exists ("Created"): remove by label.
      const ids = await w.docker(["ps", "-aq", "--filter", `label=${foreignLabel}`]);
      const foreign = ids.stdout.split("\n").filter(Boolean);
      if (foreign.length) await w.docker(["rm", "-f", ...foreign]);
    }
  },
});

Deno.test({
  name: "real engine: a machine that cannot boot fails fast, with its log, and is rolled back",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    // busybox alone: no sshd and no package manager to install it. The bootstrap exits 1
    // and Docker restarts it in a loop. (A bootstrap that fails slowly, apt timing out,
    // is caught by its uptime starting over: tests/unit/boot_watch_test.ts.)
    const broken = { MACHINE_IMAGE: w.images.tiny, READY_TIMEOUT: "10m" };
    figures.machines.add(m("broken"));
    const started = Date.now();
    const r = await w.run("create", m("broken"), { env: broken });
    const seconds = (Date.now() - started) / 1000;
    assert.notEqual(r.code, 0, "create must fail");
    assert.ok(seconds < 90, `failed after ${seconds.toFixed(0)} s, not READY_TIMEOUT's 10 m`);
    const message = r.stderr.trim().split("\n").at(-1)!;
    assert.match(message, /container (keeps restarting|exited with code [1-9])/);
    assert.match(message, /bootstrap failed/);
    assert.match(message, /MACHINE_IMAGE devpod-test\/tiny/);
    assert.match(
      message,
      /cannot install openssh-server/,
      `the bootstrap error is shown: ${message}`,
    );
    assert.doesNotMatch(r.stderr, /did not answer SSH|firewall/, "the network is not blamed");
    assert.doesNotMatch(r.stderr, new RegExp(w.emu.token), "the token is never printed");
    const left = await w.docker([
      "ps",
      "-aq",
      "--filter",
      `label=dev.devpod.machine-id=${m("broken")}`,
    ]);
    assert.equal(left.stdout.trim(), "", "rolled back: no container left");
    assert.equal(await status(w, m("broken"), broken), "NotFound");
  },
});

Deno.test({
  name:
    "real engine: a machine that breaks later: Stopped (not Busy), stop ends the loop, start says why",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    const id = m("later");
    await create(w, id);
    // Break the next boot: the bootstrap's state dir becomes a file (the container's /run
    // survives restarts), then a crash makes Docker restart it into a loop.
    const machine = (await inspectMachine(w, id)).Id;
    const breakIt = "rm -rf /run/devpod && touch /run/devpod && " +
      'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = sshd ] && ' +
      '[ "$(cut -d" " -f4 $d/stat)" = 1 ] && kill -9 "${d#/proc/}"; done; true';
    const k = await w.docker(["exec", machine, "sh", "-c", breakIt]);
    assert.equal(k.code, 0, k.stderr);
    // DevPod polls Busy with no end; a crash loop must read as Stopped so it calls start.
    await eventually(
      "status to say Stopped",
      async () => (await status(w, id)) === "Stopped",
      60_000,
    );

    const stop = await w.run("stop", id);
    assert.equal(stop.code, 0, stop.stderr);
    assert.doesNotMatch(stop.stderr, /already stopped/);
    const stopped = await inspectMachine(w, id);
    assert.equal(stopped.State.Status, "exited", "stop ended the restart loop");
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await inspectMachine(w, id)).State.Status, "exited", "and it stays stopped");

    const started = Date.now();
    const start = await w.run("start", id);
    assert.notEqual(start.code, 0);
    assert.ok(Date.now() - started < 90_000, "start fails fast");
    assert.match(start.stderr, /bootstrap failed/);
    assert.match(start.stderr, /cannot create \/run\/devpod/, "with the bootstrap's own words");
    const del = await w.run("delete", id);
    assert.equal(del.code, 0, del.stderr);
  },
});

Deno.test({
  name: "real engine: a CPU limit above the server's CPUs is capped once, and remembered",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    const cpus = navigator.hardwareConcurrency;
    // One preset above this host: Docker refuses it ("Range of CPUs is from 0.01 to …").
    const preset = cpus < 4 ? "medium" : cpus < 8 ? "large" : null;
    if (!preset) return; // a host this large accepts every preset: nothing to cap
    const big = { MACHINE_TYPE: preset, DOCKER_MODE: "none" };
    const r = await create(w, m("cpu"), big);
    const warnings = r.stderr.split("\n").filter((l) => /capped at/.test(l));
    assert.equal(warnings.length, 1, `one warning:\n${r.stderr}`);
    assert.match(warnings[0], new RegExp(`MACHINE_TYPE ${preset} asks for \\d+ CPUs`));
    assert.equal((await inspectMachine(w, m("cpu"))).HostConfig.NanoCpus, cpus * 1e9);

    // Stop and start: the capped file is the machine's spec, not a change to redeploy.
    assert.equal((await w.run("stop", m("cpu"), { env: big })).code, 0);
    const again = await w.run("start", m("cpu"), { env: big });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /capped at|spec changed/);
    assert.equal((await w.run("delete", m("cpu"), { env: big })).code, 0);
  },
});

Deno.test({
  name: "real engine: teardown and figures",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    const ours = (ids: string[]) => ids.filter((id) => figures.machines.has(id));
    const started = ours(await starts.stop()).length;
    await w.close();
    const left = await w.docker([
      "ps",
      "-a",
      "--filter",
      "label=dev.devpod.provider",
      "--format",
      '{{.Label "dev.devpod.machine-id"}}',
    ]);
    assert.deepEqual(ours(left.stdout.split("\n")), [], "no machine container of ours is left");
    console.log(
      `real engine: ${figures.machines.size} machines, ${started} containers started, ` +
        `nested container ran: ${figures.nestedRan ? "yes" : "no"}`,
    );
    assert.ok(started >= figures.machines.size, "every machine started at least once");
  },
});
