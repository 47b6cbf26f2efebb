/**
 * The machine's promises, through the real entry point: token-free idle auto-stop by
 * the real watchdog (and not while a session is open), data kept across stop/start
 * and redeploys, removed by delete unless KEEP_VOLUMES=true.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "./harness.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

async function statusOf(w: World, id: string) {
  const r = await w.run("status", id);
  assert.equal(r.code, 0, r.stderr);
  return r.stdoutText.trim();
}

async function waitFor(fn: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

Deno.test({
  ...OPTS,
  name: "machine: idle watchdog stops the machine, but not while a session is open",
  async fn() {
    const w = await startWorld({ options: { INACTIVITY_TIMEOUT: "3s" } });
    const id = "idle-0a1b2";
    try {
      assert.equal((await w.run("create", id)).code, 0);
      // A session held open past the timeout keeps the machine up.
      const session = w.run("command", id, { command: "sleep 7; echo still-here" });
      await new Promise((r) => setTimeout(r, 5000));
      assert.equal(await statusOf(w, id), "Running", "an open session keeps it running");
      assert.equal((await session).stdoutText, "still-here\n");
      // Then, idle: it stops itself (PID 1 exits 0, so restart: on-failure leaves it).
      assert.ok(
        await waitFor(async () => (await statusOf(w, id)) === "Stopped", 40_000),
        "idle stop",
      );
      const c = (await w.emu.snapshot()).composes[0].container;
      assert.deepEqual([c.state, c.exitCode], ["exited", 0]);
      assert.equal((await w.run("start", id)).code, 0);
      assert.equal(await statusOf(w, id), "Running");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...OPTS,
  name: "machine: home survives stop/start and a redeploy after a spec change; delete removes it",
  async fn() {
    const w = await startWorld();
    const id = "vol-0a1b2";
    try {
      assert.equal((await w.run("create", id)).code, 0);
      await w.run("command", id, { command: "echo v1 > ~/work.txt" });
      assert.equal((await w.run("stop", id)).code, 0);
      // A different size is a different compose file: start must redeploy, keeping volumes.
      const start = await w.run("start", id, { env: { MACHINE_MEMORY: "3072m" } });
      assert.equal(start.code, 0, start.stderr);
      assert.match(start.stderr, /spec changed .* redeploying, volumes kept/);
      assert.equal((await w.run("command", id, { command: "cat ~/work.txt" })).stdoutText, "v1\n");
      assert.ok((await w.emu.snapshot()).volumeDirs.length > 0);
      assert.equal((await w.run("delete", id)).code, 0);
      assert.deepEqual((await w.emu.snapshot()).volumeDirs, [], "delete removes the volumes");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...OPTS,
  name: "machine: KEEP_VOLUMES=true keeps the volumes on delete",
  async fn() {
    const w = await startWorld({ options: { KEEP_VOLUMES: "true" } });
    const id = "keep-0a1b2";
    try {
      assert.equal((await w.run("create", id)).code, 0);
      await w.run("command", id, { command: "echo keep > ~/k.txt" });
      assert.equal((await w.run("delete", id)).code, 0);
      const snap = await w.emu.snapshot();
      assert.equal(snap.composes.length, 0);
      assert.ok(snap.volumeDirs.some((d) => d.endsWith("_home")), "home volume kept");
      const home = snap.volumeDirs.find((d) => d.endsWith("_home"))!;
      assert.equal(await Deno.readTextFile(`${home}/k.txt`), "keep\n");
    } finally {
      await w.close();
    }
  },
});
