/**
 * The network guard on the real engine: it stops what our test machines send beyond the
 * host and nothing else. "Beyond the host" is a stand-in for the internet that this test
 * owns: a network namespace behind a veth pair, routed from the host like any uplink,
 * with an HTTP listener on 198.18.x.2 (RFC 2544's benchmarking range). Nothing leaves
 * this machine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { dockerCompose } from "../emulator/machine/compose_command.ts";
import { SERVER_PATH as PATH } from "../emulator/machine/runtime.ts";
import { type Engine, ensureEngine } from "./engine.ts";
import { BRIDGE_NAME_OPTION, BRIDGE_PREFIX, GUARD_COMMENT, guardRules } from "./guard.ts";
import { docker, ensureImages } from "./images.ts";
import { recordCreated } from "./ledger.ts";
import { run } from "./run.ts";
import { eventually } from "./world.ts";
import { bounded } from "../../scripts/engine_session.ts";

const RUN = `${Deno.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };

interface Outside {
  address: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

async function must(what: string, cmd: string, args: string[]) {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The first line a child prints. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.includes("\n")) break;
  }
  return text.split("\n")[0];
}

/** busybox httpd in a network namespace of its own, reached from the host over a veth pair. */
async function startOutside(): Promise<Outside> {
  const dir = await Deno.makeTempDir({ prefix: "devpod-outside-" });
  const token = `outside-${crypto.randomUUID()}`;
  await Deno.writeTextFile(join(dir, "token"), token);
  const port = 18080;
  // unshare may fork: the listener says its own pid (the namespace's) before it starts.
  // The namespace, and the veth pair with it, goes when the listener ends.
  const holder = new Deno.Command("unshare", {
    args: ["--net", "sh", "-c", 'echo $$ && exec busybox httpd -f -p "$0" -h "$1"', `${port}`, dir],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const pid = Number(await bounded(firstLine(holder.stdout), 10_000, "the listener did not start"));
  const octet = 1 + Math.floor(Math.random() * 250);
  const [hostSide, outsideSide] = [`dpgh${RUN}`.slice(0, 15), `dpgo${RUN}`.slice(0, 15)];
  const address = `198.18.${octet}.2`;
  const close = async () => {
    for (const p of [pid, holder.pid]) {
      try {
        if (p) Deno.kill(p, "SIGKILL");
      } catch { /* ended */ }
    }
    await holder.status;
    await run("ip", ["link", "del", hostSide]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    assert.ok(pid > 0, "the listener's pid");
    const ns = ["-t", String(pid), "-n"];
    await must("veth", "ip", [
      "link",
      "add",
      hostSide,
      "type",
      "veth",
      "peer",
      "name",
      outsideSide,
    ]);
    await must("veth into the namespace", "ip", ["link", "set", outsideSide, "netns", `${pid}`]);
    await must("host address", "ip", ["addr", "add", `198.18.${octet}.1/30`, "dev", hostSide]);
    await must("host side up", "ip", ["link", "set", hostSide, "up"]);
    await must("outside address", "nsenter", [
      ...ns,
      "ip",
      "addr",
      "add",
      `${address}/30`,
      "dev",
      outsideSide,
    ]);
    await must("outside up", "nsenter", [...ns, "ip", "link", "set", outsideSide, "up"]);
    await eventually("the outside listener answers the host", async () => {
      const res = await fetch(`http://${address}:${port}/token`, {
        signal: AbortSignal.timeout(2000),
      }).catch(() => null);
      return res !== null && (await res.text()).trim() === token;
    }, 15_000);
    return { address, port, token, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Inside `container`: an HTTP GET of `/token` at ip:port with busybox nc; never throws. */
function fetchFrom(engine: Engine, container: string, ip: string, port: number) {
  const request = `printf 'GET /token HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} ${port}`;
  return docker(engine, ["exec", container, "sh", "-c", request], { timeoutMs: 30_000 });
}

function composeFile(tiny: string): string {
  // No `networks:`: compose makes the project's default network, as for a bare service.
  return [
    "services:",
    "  probe:",
    `    image: ${tiny}`,
    "    command: [sleep, '600']",
    "  neighbour:",
    `    image: ${tiny}`,
    "    command: [sh, -c, 'mkdir -p /srv && echo near > /srv/token && exec httpd -f -p 8080 -h /srv']",
    "",
  ].join("\n");
}

Deno.test({
  name: "network guard: ours lose the outside, a network the tests did not make keeps it",
  ...NO_SANITIZE,
  async fn() {
    const engine = await ensureEngine();
    const { tiny } = await ensureImages(engine);
    const rules = await guardRules();
    assert.equal(rules.length, 1, `one rule of ours in DOCKER-USER: ${rules.join("; ")}`);
    assert.match(rules[0], new RegExp(`-i ${BRIDGE_PREFIX}\\+ .*${GUARD_COMMENT}`));

    const outside = await startOutside();
    const plainNet = `devpod-guard-plain-${RUN}`;
    const plain = `devpod-guard-plain-${RUN}`;
    const project = `devpod-guard-${RUN}`;
    const dir = await Deno.makeTempDir({ prefix: "devpod-guard-" });
    const compose = (argv: string[]) =>
      dockerCompose(engine, ["-p", project, ...argv], { cwd: dir, env: { PATH, HOME: dir } });
    try {
      // Someone else's container on the same engine: a plain `docker network create`.
      await recordCreated("network", plainNet, engine.host);
      await recordCreated("container", plain, engine.host);
      await recordCreated("app", project, engine.host);
      const made = await docker(engine, ["network", "create", plainNet]);
      assert.equal(made.code, 0, made.stderr);
      const started = await docker(engine, [
        "run",
        "-d",
        "--name",
        plain,
        "--network",
        plainNet,
        tiny,
        "sleep",
        "600",
      ]);
      assert.equal(started.code, 0, started.stderr);
      const theirs = await fetchFrom(engine, plain, outside.address, outside.port);
      assert.equal(theirs.code, 0, `egress of a network not ours: ${theirs.stderr}`);
      assert.match(theirs.stdout, new RegExp(outside.token));

      // Ours: a compose project deployed as the emulator deploys one.
      await Deno.writeTextFile(join(dir, "docker-compose.yml"), composeFile(tiny));
      const up = await compose(["-f", "docker-compose.yml", "up", "-d"]);
      assert.equal(up.code, 0, up.output);
      const net = JSON.parse(
        (await docker(engine, ["network", "inspect", `${project}_default`])).stdout,
      )[0];
      assert.match(net.Options[BRIDGE_NAME_OPTION], new RegExp(`^${BRIDGE_PREFIX}`));
      const ours = await fetchFrom(engine, `${project}-probe-1`, outside.address, outside.port);
      assert.notEqual(ours.code, 0, `a test machine reached the outside:\n${ours.stdout}`);
      assert.doesNotMatch(ours.stdout, new RegExp(outside.token));
      assert.match(ours.stderr, /refused/, "rejected, not left to time out");

      // …and still reaches its neighbour on the same network.
      const neighbourIp = (await docker(engine, [
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        `${project}-neighbour-1`,
      ])).stdout.trim();
      const near = await eventually("the neighbour answers", async () => {
        const r = await fetchFrom(engine, `${project}-probe-1`, neighbourIp, 8080);
        return r.code === 0 && /near/.test(r.stdout) && r;
      }, 30_000);
      assert.match(near.stdout, /200 OK/);

      // The plain network's egress held all along (the guard is still up).
      assert.equal((await guardRules()).length, 1);
      const again = await fetchFrom(engine, plain, outside.address, outside.port);
      assert.match(again.stdout, new RegExp(outside.token));
    } finally {
      await compose(["down", "--volumes"]);
      await docker(engine, ["rm", "-f", plain]);
      await docker(engine, ["network", "rm", plainNet]);
      await outside.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
