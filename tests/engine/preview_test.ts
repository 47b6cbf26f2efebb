/**
 * Preview URLs end to end on the real engine (issue 19): the provider (`deno run mod.ts`,
 * as a user runs it) adds and removes previews of a dind machine; the emulator deploys
 * them with Dokploy's own label rewrite and compose command lines; the forwarder and the
 * machine's relay are the real ones. Traefik is packaged for neither Debian nor npm, so
 * Debian's nginx stands in for it, configured only from what Traefik itself would read:
 * the labels of the running containers (router rule, service port, middlewares and their
 * basic-auth htpasswd, traefik.docker.network → the container's address there).
 *
 * The containers carry compose v1's names (`<project>_machine_1`, as Debian's docker-compose
 * gives them), not v2's that a Dokploy server gives: the two ends must find each other by
 * what every compose provides, the service names on the machine's network (issue 26).
 *
 * Ends with two figure lines:
 *   previews: N served through the proxy, 401 without auth: yes, machine on dokploy-network: no
 *   stand-in: preview path by service name: yes
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MOD } from "../e2e/harness.ts";
import { guardedBridgeName } from "./guard.ts";
import { run } from "./run.ts";
import {
  type EngineWorld,
  eventually,
  inspectMachine,
  saveImage,
  startEngineWorld,
} from "./world.ts";

const RUN = Deno.pid.toString(36);
const ID = `prv-${RUN}`;
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };
const figures = {
  served: new Set<number>(),
  unauthorized: false,
  machineOnDokployNetwork: true,
  /** Served with no container named as compose v2 names them, and doctor saw the path. */
  byServiceName: { v1Names: false, served: false, doctor: false },
};

let world: EngineWorld;
let proxy: LabelProxy;
let createdDokployNetwork = false;

Deno.test({
  name: "previews: set-up (engine, images, dokploy-network, emulator, nginx)",
  ...NO_SANITIZE,
  async fn() {
    // Not v2's names: nothing may hang on `<project>-machine-1` (issue 26).
    world = await startEngineWorld({}, { containerNames: "v1" });
    // Dokploy's own network, which every Dokploy server has; made here when the engine lacks
    // it, on a bridge the tests' network guard keeps off the world.
    if ((await world.docker(["network", "inspect", "dokploy-network"])).code !== 0) {
      const made = await world.docker([
        "network",
        "create",
        "-o",
        `com.docker.network.bridge.name=${guardedBridgeName("dokploy", "dokploy-network")}`,
        "dokploy-network",
      ]);
      assert.equal(made.code, 0, made.stderr);
      createdDokployNetwork = true;
    }
    proxy = await LabelProxy.start(world);
  },
});

Deno.test({
  name: "previews: served by Host through the proxy, basic auth, rm, stop/start, the machine kept",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    let machineId = "";
    let startedAt = "";
    let session: Session;
    let a = { url: "", host: "", user: "", password: "" };
    const bHost = `b-${RUN}.preview.test`;

    await t.step(
      "a dind machine runs an HTTP app in its nested engine (0.0.0.0:3000, :8080)",
      async () => {
        const r = await w.run("create", ID);
        assert.equal(r.code, 0, r.stderr);
        const machine = await inspectMachine(w, ID);
        const load = await w.docker(["exec", "-i", machine.Id, "docker", "load"], {
          stdin: (await saveImage(w, w.images.tiny)).stdout,
        });
        assert.equal(load.code, 0, load.stderr);
        // As DevPod runs a devcontainer: its label, the engine's default bridge, no ports.
        const app = await sh(
          w,
          `docker run -d --restart always --name app --label dev.containers.id=${ID} ${w.images.tiny} ` +
            `sh -c 'mkdir -p /a /b && echo app-3000-${RUN} >/a/index.html && echo app-8080-${RUN} >/b/index.html && httpd -p 0.0.0.0:3000 -h /a && exec httpd -f -p 0.0.0.0:8080 -h /b'`,
        );
        assert.match(app, /^[0-9a-f]{64}\n$/);
        machineId = machine.Id;
        startedAt = machine.State.StartedAt;
        session = await Session.open(w);
      },
    );

    await t.step(
      "preview <machine> 3000: a generated host, a user and password shown once",
      async () => {
        const r = await human(w, ["preview", ID, "3000"]);
        assert.equal(r.code, 0, r.stderr);
        const url = /is at (http:\/\/\S+)/.exec(r.stdout)?.[1] ?? "";
        a = {
          url,
          host: new URL(url).host,
          user: /user: (\S+)/.exec(r.stdout)?.[1] ?? "",
          password: /password: (\S+)/.exec(r.stdout)?.[1] ?? "",
        };
        assert.match(
          a.host,
          /-127-0-0-1\.sslip\.io$/,
          "Dokploy's sslip.io name: plain HTTP on a loopback IP",
        );
        assert.match(a.password, /^[A-Za-z0-9]{24}$/);
        assert.ok(!r.stderr.includes(a.password), "the password only on stdout");
        const stored = (await w.emu.snapshot()).composeFiles[await composeIdOf(w)];
        assert.ok(!stored.includes(a.password), "Dokploy has the hash, never the password");
        assert.ok(stored.includes("$$apr1$$"), "the htpasswd hash is in the forwarder's labels");
      },
    );

    await t.step("preview --host --auth none --no-https: a second port", async () => {
      const r = await human(w, [
        "preview",
        ID,
        "8080",
        "--host",
        bHost,
        "--auth",
        "none",
        "--no-https",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`is at http://${bHost.replaceAll(".", "\\.")}\n`));
      assert.match(r.stdout, /open to anyone/);
    });

    await t.step("through the proxy: by Host, 401 without or with a wrong password", async () => {
      await proxy.configure();
      const ok = await proxy.get(a.host, `${a.user}:${a.password}`);
      assert.deepEqual(ok, { status: 200, body: `app-3000-${RUN}\n` });
      figures.served.add(3000);
      assert.equal((await proxy.get(a.host)).status, 401);
      assert.equal((await proxy.get(a.host, `${a.user}:wrong`)).status, 401);
      figures.unauthorized = true;
      assert.deepEqual(await proxy.get(bHost), { status: 200, body: `app-8080-${RUN}\n` });
      figures.served.add(8080);
      assert.equal((await proxy.get("unknown.preview.test")).status, 404);
      figures.byServiceName.served = true;
    });

    await t.step(
      "compose v1's names, and its service-name aliases on each network a service joins",
      async () => {
        const appName = await appNameOf(w);
        const names = async (name: string) =>
          (await w.docker(["ps", "-a", "--format", "{{.Names}}", "--filter", `name=^/${name}$`]))
            .stdout.trim();
        assert.equal(await names(`${appName}-machine-1`), "", "no v2 name to lean on");
        assert.equal(await names(`${appName}-preview-1`), "");
        assert.equal(await names(`${appName}_machine_1`), `${appName}_machine_1`);
        const m = await inspectMachine(w, ID);
        assert.ok(m.NetworkSettings.Networks[`${appName}_machine`].Aliases.includes("machine"));
        const f = await forwarder(w);
        assert.ok(f.NetworkSettings.Networks[`${appName}_machine`].Aliases.includes("preview"));
        // Why the names are qualified with the network: there, `preview` is everyone's.
        assert.ok(f.NetworkSettings.Networks["dokploy-network"].Aliases.includes("preview"));
        figures.byServiceName.v1Names = true;
      },
    );

    await t.step(
      "doctor: one line per preview, its path checked through the forwarder",
      async () => {
        const r = await human(w, ["doctor"]);
        assert.match(
          r.stdout,
          new RegExp(
            `✔ preview ${ID}:3000 .*: the forwarder reaches the relay, the app answers \\(HTTP \\d{3}\\)\n`,
          ),
          r.stdout,
        );
        assert.match(
          r.stdout,
          new RegExp(
            `✔ preview ${ID}:8080 .*: the forwarder reaches the relay, the app answers \\(HTTP \\d{3}\\)\n`,
          ),
        );
        figures.byServiceName.doctor = true;
      },
    );

    await t.step("the machine container was kept, and so was its SSH session", async () => {
      const m = await inspectMachine(w, ID);
      assert.equal(m.Id, machineId, "same container");
      assert.equal(m.State.StartedAt, startedAt, "never restarted");
      assert.equal(await session.ping("after-add"), "got after-add");
    });

    await t.step(
      "the machine is not on dokploy-network; the forwarder is, unprivileged",
      async () => {
        const m = await inspectMachine(w, ID);
        figures.machineOnDokployNetwork = "dokploy-network" in m.NetworkSettings.Networks;
        assert.equal(figures.machineOnDokployNetwork, false);
        const f = await forwarder(w);
        assert.ok("dokploy-network" in f.NetworkSettings.Networks);
        assert.equal(f.HostConfig.Privileged, false);
        assert.deepEqual(f.HostConfig.CapDrop, ["ALL"]);
        assert.equal(f.HostConfig.ReadonlyRootfs, true);
        assert.equal(f.Config.User, "65534:65534");
        assert.deepEqual(f.Mounts, [], "no Docker socket, no volume");
        assert.equal(f.Config.Labels["traefik.docker.network"], "dokploy-network");
      },
    );

    await t.step(
      "the relay serves the forwarder only, not another container on the network",
      async () => {
        const appName = await appNameOf(w);
        const probe = await w.docker([
          "run",
          "--rm",
          "--network",
          `${appName}_machine`,
          w.images.tiny,
          "sh",
          "-c",
          `printf 'DEVPOD-PREVIEW 8080\nGET / HTTP/1.0\r\n\r\n' | nc -w 5 machine.${appName}_machine 47022; echo "exit $?"`,
        ], { timeoutMs: 60_000 });
        assert.equal(probe.code, 0, probe.stderr);
        assert.doesNotMatch(probe.stdout, /app-8080/, "nothing of the app");
        assert.match(probe.stdout, /502 Bad Gateway[^]*relay refused [\d.]+: it is not preview\./);
        assert.match(probe.stdout, /exit \d+\n$/);
        const log = await sh(w, "cat /run/devpod/preview-relay.log");
        assert.match(log, new RegExp(`refused [\\d.]+: not preview\\.${appName}_machine\n`));
      },
    );

    await t.step("preview list shows both", async () => {
      const r = await human(w, ["preview", "list"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`${ID}\\s+3000\\s+${a.url.replaceAll(".", "\\.")}\\s+basic \\(${a.user}\\)`),
      );
      assert.match(
        r.stdout,
        new RegExp(`${ID}\\s+8080\\s+http://${bHost.replaceAll(".", "\\.")}\\s+none`),
      );
      const listed = await human(w, ["list"]);
      assert.match(listed.stdout, /PREVIEWS/);
      assert.match(listed.stdout, /3000, 8080/);
    });

    await t.step(
      "preview rm: 404 through the proxy, the other stays, the machine kept",
      async () => {
        const r = await human(w, ["preview", "rm", ID, "3000"]);
        assert.equal(r.code, 0, r.stderr);
        await proxy.configure();
        assert.equal((await proxy.get(a.host, `${a.user}:${a.password}`)).status, 404);
        assert.deepEqual(await proxy.get(bHost), { status: 200, body: `app-8080-${RUN}\n` });
        const m = await inspectMachine(w, ID);
        assert.equal(m.Id, machineId);
        assert.equal(m.State.StartedAt, startedAt);
        assert.equal(await session.ping("after-rm"), "got after-rm");
        assert.equal(await session.close(), 0);
      },
    );

    await t.step("doctor: a relay that is gone fails the path, with the fix", async () => {
      // The relay's processes in the machine, by their command line (`[2]`: not this shell's).
      const killed = await w.docker([
        "exec",
        machineId,
        "sh",
        "-c",
        `for d in /proc/[0-9]*; do tr '\\0' ' ' <$d/cmdline 2>/dev/null | grep -q ' machine 4702[2] ' && kill \${d#/proc/} && echo \${d#/proc/}; done`,
      ]);
      assert.match(killed.stdout, /^\d+\n/, killed.stderr);
      const r = await human(w, ["doctor"]);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stdout,
        new RegExp(
          `✘ preview ${ID}:8080 .*: the forwarder cannot reach the machine's relay \\([\\d.]+:47022: Connection refused\\); devpod stop, then devpod up`,
        ),
        r.stdout,
      );
    });

    await t.step(
      "a machine that stopped itself: its URL answers an error, never an app",
      async () => {
        // As an idle stop does: the machine exits, its forwarder stays up.
        const stopped = await w.docker(["stop", machineId], { timeoutMs: 90_000 });
        assert.equal(stopped.code, 0, stopped.stderr);
        const r = await proxy.get(bHost);
        assert.equal(r.status, 502);
        assert.match(r.body, /the machine is not running/);
      },
    );

    await t.step("start: the preview comes back with the machine", async () => {
      const r = await w.run("start", ID);
      assert.equal(r.code, 0, r.stderr);
      await proxy.configure();
      // The nested engine restarts the app (restart always) a moment after sshd is up.
      await eventually(
        "the app answers again",
        async () => (await proxy.get(bHost)).status === 200,
        60_000,
      );
      assert.deepEqual(await proxy.get(bHost), { status: 200, body: `app-8080-${RUN}\n` });
    });

    await t.step("stop: the forwarder stops too, so the proxy routes nothing there", async () => {
      const r = await w.run("stop", ID);
      assert.equal(r.code, 0, r.stderr);
      await proxy.configure();
      assert.equal((await proxy.get(bHost)).status, 404);
    });

    await t.step("delete removes the previews and their domains", async () => {
      const composeId = await composeIdOf(w);
      const r = await w.run("delete", ID);
      assert.equal(r.code, 0, r.stderr);
      const snap = await w.emu.snapshot();
      assert.equal(snap.domains.filter((d) => d.composeId === composeId).length, 0);
      const left = await w.docker(["ps", "-aq", "--filter", `label=dev.devpod.preview-of=${ID}`]);
      assert.equal(left.stdout.trim(), "", "no forwarder left");
    });
  },
});

Deno.test({
  name: "previews: tear-down",
  ...NO_SANITIZE,
  async fn() {
    await proxy?.stop();
    await proxy?.remove();
    await world?.close();
    // Ours (made by this test, here or in a run beside it) and unused: the last run out removes it.
    const net = await world?.docker([
      "network",
      "inspect",
      "-f",
      '{{index .Options "com.docker.network.bridge.name"}} {{len .Containers}}',
      "dokploy-network",
    ]);
    if (net?.stdout.trim() === `${guardedBridgeName("dokploy", "dokploy-network")} 0`) {
      await world?.docker(["network", "rm", "dokploy-network"]);
    } else if (createdDokployNetwork) {
      console.error(
        `dokploy-network kept: ${net?.stdout.trim()} (in use by a run beside this one)`,
      );
    }
    console.log(
      `previews: ${figures.served.size} served through the proxy, 401 without auth: ${
        figures.unauthorized ? "yes" : "no"
      }, machine on dokploy-network: ${figures.machineOnDokployNetwork ? "yes" : "no"}`,
    );
    const byName = Object.values(figures.byServiceName).every(Boolean);
    console.log(`stand-in: preview path by service name: ${byName ? "yes" : "no"}`);
  },
});

// ---------------------------------------------------------------- helpers

async function sh(w: EngineWorld, command: string): Promise<string> {
  const r = await w.run("command", ID, { command });
  assert.equal(r.code, 0, `command ${command} failed:\n${r.stderr}`);
  return r.stdoutText;
}

/** A human verb (`preview …`, `list`) with the world's options, as a user types it. */
async function human(w: EngineWorld, args: string[]) {
  const r = await run(Deno.execPath(), ["run", "--allow-all", "--quiet", MOD, ...args], {
    env: w.env(ID),
    clearEnv: true,
    timeoutMs: 300_000,
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

async function appNameOf(w: EngineWorld): Promise<string> {
  return JSON.parse(await Deno.readTextFile(`${w.folder(ID)}/state.json`)).appName;
}

async function composeIdOf(w: EngineWorld): Promise<string> {
  return JSON.parse(await Deno.readTextFile(`${w.folder(ID)}/state.json`)).composeId;
}

async function forwarder(w: EngineWorld) {
  const ids = await w.docker(["ps", "-q", "--filter", `label=dev.devpod.preview-of=${ID}`]);
  const id = ids.stdout.split("\n").find(Boolean);
  assert.ok(id, "the forwarder runs");
  return JSON.parse((await w.docker(["inspect", id])).stdout)[0];
}

/** An SSH session through `command`, kept open: it answers each line it reads. */
class Session {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: ReadableStreamDefaultReader<string>;
  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
      .getReader();
  }
  static async open(w: EngineWorld): Promise<Session> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", MOD, "command"],
      env: { ...w.env(ID), COMMAND: 'echo started; while read -r l; do echo "got $l"; done' },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const s = new Session(child);
    assert.equal(await s.#next(), "started");
    return s;
  }
  async #next(): Promise<string> {
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 60_000);
    try {
      const { value } = await this.#lines.read();
      return value ?? "(session ended)";
    } finally {
      clearTimeout(timer);
    }
  }
  async ping(word: string): Promise<string> {
    await this.#writer.write(new TextEncoder().encode(`${word}\n`));
    return await this.#next();
  }
  async close(): Promise<number> {
    await this.#writer.close();
    const rest = await this.#lines.read();
    assert.ok(rest.done, "nothing more");
    return (await this.#child.status).code;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let buffered = "";
  return new TransformStream({
    transform(chunk, out) {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        out.enqueue(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    },
  });
}

/**
 * Debian's nginx standing in for Dokploy's Traefik: a server per router of the running
 * containers that enable Traefik, built only from their labels as Traefik's Docker
 * provider reads them.
 */
class LabelProxy {
  #dir: string;
  #port: number;
  #w: EngineWorld;
  #nginx: { child: Deno.ChildProcess; exited: Promise<Deno.CommandOutput> } | null = null;
  private constructor(w: EngineWorld, dir: string, port: number) {
    this.#w = w;
    this.#dir = dir;
    this.#port = port;
  }

  static async start(w: EngineWorld): Promise<LabelProxy> {
    const dir = await Deno.makeTempDir({ prefix: "devpod-preview-proxy-" });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const p = new LabelProxy(w, dir, port);
    await p.configure();
    return p;
  }

  /** Reads every running container's labels and (re)starts nginx with their routers. */
  async configure(): Promise<void> {
    const servers: string[] = [];
    const ids = (await this.#w.docker(["ps", "-q", "--filter", "label=traefik.enable=true"])).stdout
      .split("\n").filter(Boolean);
    for (const id of ids) {
      const c = JSON.parse((await this.#w.docker(["inspect", id])).stdout)[0];
      // Only ours: other sessions' containers on the shared engine are not this test's.
      if (c.Config.Labels["dev.devpod.preview-of"] !== ID) continue;
      servers.push(...await this.#serversOf(c));
    }
    const conf = [
      "user root;",
      "daemon off;",
      "worker_processes 1;",
      `pid ${this.#dir}/nginx.pid;`,
      `error_log ${this.#dir}/error.log;`,
      "events {}",
      "http {",
      "  access_log off;",
      // sslip.io names are long: the default bucket (64) would refuse them.
      "  server_names_hash_bucket_size 256;",
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) =>
        `  ${k}_temp_path ${this.#dir}/${k};`
      ),
      `  server { listen 127.0.0.1:${this.#port} default_server; return 404; }`,
      ...servers,
      "}",
      "",
    ].join("\n");
    await Deno.writeTextFile(join(this.#dir, "nginx.conf"), conf);
    await this.stop();
    const child = new Deno.Command("nginx", {
      args: ["-p", this.#dir, "-c", join(this.#dir, "nginx.conf")],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const nginx = { child, exited: child.output(), done: false };
    nginx.exited.then(() => nginx.done = true);
    this.#nginx = nginx;
    await eventually("nginx listens", async () => {
      if (nginx.done) {
        throw new Error(`nginx exited: ${new TextDecoder().decode((await nginx.exited).stderr)}`);
      }
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.#port })).close();
        return true;
      } catch {
        return false;
      }
    }, 20_000);
  }

  // deno-lint-ignore no-explicit-any
  async #serversOf(c: any): Promise<string[]> {
    const labels: Record<string, string> = c.Config.Labels;
    const network = labels["traefik.docker.network"];
    const ip = c.NetworkSettings.Networks[network]?.IPAddress;
    assert.ok(ip, `the container has an address on ${network}`);
    const out: string[] = [];
    for (const [key, rule] of Object.entries(labels)) {
      const router = /^traefik\.http\.routers\.([^.]+)\.rule$/.exec(key)?.[1];
      if (!router || labels[`traefik.http.routers.${router}.entrypoints`] !== "web") continue;
      const host = /^Host\(`([^`]+)`\)$/.exec(rule)?.[1];
      assert.ok(host, `a plain Host rule: ${rule}`);
      const service = labels[`traefik.http.routers.${router}.service`];
      const port = labels[`traefik.http.services.${service}.loadbalancer.server.port`];
      const auth: string[] = [];
      for (const mw of (labels[`traefik.http.routers.${router}.middlewares`] ?? "").split(",")) {
        if (!mw) continue;
        const users =
          labels[`traefik.http.middlewares.${mw.replace(/@docker$/, "")}.basicauth.users`];
        assert.ok(users, `middleware ${mw} is defined by a label`);
        const file = join(this.#dir, `${router}.htpasswd`);
        await Deno.writeTextFile(file, users.split(",").join("\n") + "\n");
        auth.push(`auth_basic "preview";`, `auth_basic_user_file ${file};`);
      }
      out.push(
        `  server { listen 127.0.0.1:${this.#port}; server_name ${host}; ${auth.join(" ")} ` +
          `location / { proxy_pass http://${ip}:${port}; } }`,
      );
    }
    return out;
  }

  async get(host: string, userPass?: string): Promise<{ status: number; body: string }> {
    const r = await run("curl", [
      "-sS",
      "--max-time",
      "30",
      "-H",
      `Host: ${host}`,
      ...(userPass ? ["-u", userPass] : []),
      "-w",
      "\n%{http_code}",
      `http://127.0.0.1:${this.#port}/`,
    ], { timeoutMs: 60_000 });
    const at = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
  }

  async remove(): Promise<void> {
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  async stop(): Promise<void> {
    if (!this.#nginx) return;
    try {
      this.#nginx.child.kill("SIGTERM");
    } catch { /* it exited by itself */ }
    await this.#nginx.exited;
    this.#nginx = null;
  }
}
