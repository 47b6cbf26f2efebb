/**
 * `deno task test` (scripts/test.ts) on a tiny run of its own, in a subprocess: Deno's
 * output and exit code pass through, a stop signal ends the run and still releases the
 * engine, and a run that ends never takes the engine from one still using it — here this
 * test process, a user since its `ensureEngine`. (That the last run to end tears it down is
 * checked by `.ci/run` after the suite, with `deno task engine status`.)
 */
import assert from "node:assert/strict";
import { ensureEngine } from "./engine.ts";
import { guardRules } from "./guard.ts";
import { docker } from "./images.ts";
import { run } from "./run.ts";
import { startTime } from "./users.ts";
import { eventually } from "./world.ts";

const REPO = decodeURIComponent(new URL("../..", import.meta.url).pathname);
const FIXTURE = "tests/engine/fixtures/wrapped.ts";
const MACHINE_FIXTURE = "tests/engine/fixtures/machine_run.ts";
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };
const LEFT_UP = new RegExp(`engine: left up, still used by .*\\b${Deno.pid} \\(`);

async function task(mode: string) {
  const r = await run(Deno.execPath(), ["task", "test", FIXTURE], {
    cwd: REPO,
    env: { FIXTURE_MODE: mode, NO_COLOR: "1" },
    timeoutMs: 180_000,
  });
  return { code: r.code, output: r.stdout + r.stderr };
}

/** `scripts/test.ts <fixture>` in a subprocess, told to write to a fresh FIXTURE_MARKER path. */
async function startWrapped(fixture: string, env: Record<string, string> = {}) {
  const marker = await Deno.makeTempFile({ prefix: "devpod-wrapped-" });
  await Deno.remove(marker);
  const wrapper = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "scripts/test.ts", fixture],
    cwd: REPO,
    env: { ...env, FIXTURE_MARKER: marker, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = wrapper.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    /** What the fixture wrote, once it did. */
    written: (what: string, timeoutMs: number) =>
      eventually(
        what,
        async () => (await Deno.readTextFile(marker).catch(() => "")) || false,
        timeoutMs,
      ),
    async terminate() {
      wrapper.kill("SIGTERM");
      const out = await output;
      return { code: out.code, text: decode(out.stdout) + decode(out.stderr) };
    },
    async close() {
      try {
        wrapper.kill("SIGKILL");
      } catch { /* ended */ }
      await output.catch(() => {});
      await Deno.remove(marker).catch(() => {});
    },
  };
}

Deno.test({
  name: "deno task test: Deno's summary and exit code pass through; the engine stays for others",
  ...NO_SANITIZE,
  async fn() {
    const engine = await ensureEngine();
    const pass = await task("pass");
    assert.equal(pass.code, 0, pass.output);
    assert.match(pass.output, /^ok \| 2 passed \| 0 failed/m);
    assert.match(pass.output, LEFT_UP);

    const fail = await task("fail");
    assert.equal(fail.code, 1, fail.output);
    assert.match(fail.output, /^FAILED \| 1 passed \| 1 failed/m);
    assert.match(fail.output, LEFT_UP);

    assert.equal((await docker(engine, ["version"])).code, 0, "the engine still answers");
    assert.equal((await guardRules()).length, 1, "the guard is still up");
  },
});

Deno.test({
  name: "deno task test: SIGTERM ends the run it started, then releases the engine",
  ...NO_SANITIZE,
  async fn() {
    await ensureEngine();
    const wrapped = await startWrapped(FIXTURE, { FIXTURE_MODE: "wait" });
    try {
      const testPid = Number(await wrapped.written("the wrapped run started", 60_000));
      const { code, text } = await wrapped.terminate();
      assert.equal(code, 128 + 15, text);
      assert.equal(startTime(testPid), null, "the wrapped `deno test` ended with it");
      assert.match(text, /SIGTERM: stopping, then releasing the test engine/);
      assert.match(text, LEFT_UP);
    } finally {
      await wrapped.close();
    }
  },
});

Deno.test({
  name: "deno task test: a run ended by SIGTERM removes the machines, volumes and networks it made",
  ...NO_SANITIZE,
  async fn() {
    // This process is a user: the engine stays up when the run ends, as a daemon we did
    // not start does. Only the run's own project is looked at (others may share the engine).
    const engine = await ensureEngine();
    const wrapped = await startWrapped(MACHINE_FIXTURE);
    let app = "";
    const left = async () => {
      const label = ["--filter", `label=com.docker.compose.project=${app}`];
      const ids = async (args: string[]) =>
        (await docker(engine, [...args, "-q", ...label])).stdout.split("\n").filter(Boolean);
      return {
        containers: await ids(["ps", "-a"]),
        volumes: await ids(["volume", "ls"]),
        networks: await ids(["network", "ls"]),
      };
    };
    try {
      app = await wrapped.written("the wrapped run deployed its machine", 300_000);
      const before = await left();
      assert.equal(before.containers.length, 1, "the machine runs");
      assert.ok(before.volumes.length >= 1 && before.networks.length >= 1, JSON.stringify(before));
      const { code, text } = await wrapped.terminate();
      assert.equal(code, 128 + 15, text);
      assert.deepEqual(await left(), { containers: [], volumes: [], networks: [] }, text);
      assert.match(text, /engine: removed what this run left: 1 containers, 1 volumes, 1 networks/);
      assert.match(text, LEFT_UP);
    } finally {
      await wrapped.close();
      if (app) {
        const l = await left();
        if (l.containers.length) await docker(engine, ["rm", "-f", "-v", ...l.containers]);
        if (l.volumes.length) await docker(engine, ["volume", "rm", "-f", ...l.volumes]);
        if (l.networks.length) await docker(engine, ["network", "rm", ...l.networks]);
      }
    }
  },
});
