/**
 * The shared image cache (issue 11) through the real entry point, on the fast runtime:
 * one per server, made by the first create and found again by the next, agreed on by
 * parallel creates, shown by list and doctor, kept by delete, removed by cleanup when no
 * machine needs it, and never the reason a machine fails. Whether machines really pull
 * through it is the real engine's part (tests/engine/image_cache_test.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DokployApi } from "../../lib/dokploy/api.ts";
import { DokployClient } from "../../lib/dokploy/client.ts";
import { type MachineState, STATE_FILE } from "../../lib/machine/state.ts";
import { runCounted } from "./api_calls.ts";
import { runProvider, startWorld, type World } from "./harness.ts";

const CACHE = "devpod-image-cache";
/** The product's default; the e2e harness turns it off for tests about other things. */
const ON = { IMAGE_CACHE: "true" };

async function stateOf(w: World, id: string): Promise<MachineState> {
  return JSON.parse(await Deno.readTextFile(join(w.folder(id), STATE_FILE)));
}

async function caches(w: World) {
  return (await w.emu.snapshot()).composes.filter((c) => c.name === CACHE);
}

function mustPass(what: string, r: { code: number; stderr: string }) {
  assert.equal(r.code, 0, `${what} failed: ${r.stderr}`);
}

Deno.test({
  name: "e2e: image cache — made once per server, reused, listed, kept by delete, cleaned up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ options: ON });
    try {
      const first = await w.run("create", "ic-a");
      mustPass("create ic-a", first);
      assert.match(first.stderr, /creating the shared image cache of server local/);
      const [cache] = await caches(w);
      assert.ok(cache, "the first create made the cache");
      assert.equal(cache.container.state, "running");
      assert.equal(cache.publishedPort, null, "the cache publishes no port");
      assert.equal((await stateOf(w, "ic-a")).imageCache, cache.appName);

      // The next create finds it in the project it reads anyway: no call of its own.
      const second = await runCounted(w, "create", "ic-b");
      mustPass("create ic-b", second.result);
      assert.doesNotMatch(second.result.stderr, /creating the shared image cache/);
      assert.equal(second.calls.filter((c) => c === "compose.create").length, 1);
      assert.equal(second.calls.length, 6, second.calls.join(" → "));
      assert.equal((await stateOf(w, "ic-b")).imageCache, cache.appName);
      assert.equal((await caches(w)).length, 1);

      const human = w.env("unused");
      const list = await runProvider(["list", "--json"], human);
      mustPass("list", list);
      const listed = JSON.parse(list.stdoutText);
      assert.deepEqual(listed.machines.map((m: { machineId: string }) => m.machineId), [
        "ic-a",
        "ic-b",
      ]);
      assert.ok(
        listed.machines.every((m: { imageCache: string }) => m.imageCache === cache.appName),
      );
      assert.equal(listed.imageCaches.length, 1);
      assert.deepEqual(
        {
          appName: listed.imageCaches[0].appName,
          serverId: listed.imageCaches[0].serverId,
          state: listed.imageCaches[0].state,
          machines: listed.imageCaches[0].machines,
          mirror: listed.imageCaches[0].mirror,
        },
        {
          appName: cache.appName,
          serverId: null,
          state: "Running",
          machines: 2,
          mirror: `http://${cache.appName}:5000`,
        },
      );
      const table = await runProvider(["list"], human);
      assert.match(
        table.stdoutText,
        new RegExp(
          `\\nIMAGE CACHE\\s+STATE\\s+STORED\\s+PREBUILDS\\s+AGENTS\\s+SERVER\\s+MACHINES\\n${cache.appName}\\s+Running\\s+\\S+\\s+\\S+\\s+\\S+\\s+local\\s+2\\n$`,
        ),
      );
      const doctor = await runProvider(["doctor"], human);
      assert.match(
        doctor.stdoutText,
        new RegExp(
          `✔ image cache\\s+server local: ${cache.appName} running, stores .*, 2 machine\\(s\\) there`,
        ),
      );
      assert.match(doctor.stdoutText, /all checks passed\n$/);
      assert.doesNotMatch((await runProvider(["cleanup"], human)).stdoutText, /image cache/);

      // A machine's delete never takes the cache with it.
      for (const id of ["ic-a", "ic-b"]) mustPass(`delete ${id}`, await w.run("delete", id));
      assert.equal((await caches(w)).length, 1);
      const dry = await runProvider(["cleanup"], human);
      assert.match(
        dry.stdoutText,
        new RegExp(`^unused image cache ${cache.appName} \\(server local, Running\\)$`, "m"),
      );
      assert.equal((await caches(w)).length, 1, "a dry run deletes nothing");
      const real = await runProvider(["cleanup", "--yes"], human);
      assert.match(
        real.stdoutText,
        new RegExp(
          `^deleted image cache ${cache.appName} and its prebuild registry \\(server local\\)$`,
          "m",
        ),
      );
      const after = await w.emu.snapshot();
      assert.deepEqual(after.composes, []);
      assert.deepEqual(after.networks.map((n) => n.name), [], "its network went with it");
      assert.deepEqual(after.volumeDirs, [], "and its storage");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: image cache — parallel first creates on a server agree on one cache",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ options: ON });
    const ids = ["icp-1", "icp-2", "icp-3"];
    try {
      const runs = await Promise.all(ids.map((id) => w.run("create", id)));
      runs.forEach((r, i) => mustPass(`create ${ids[i]}`, r));
      await w.emu.waitIdle(30_000);
      const left = await caches(w);
      assert.equal(left.length, 1, `one cache stays: ${left.map((c) => c.appName).join(", ")}`);
      assert.equal(left[0].container.state, "running");
      for (const id of ids) assert.equal((await stateOf(w, id)).imageCache, left[0].appName);
      for (const id of ids) assert.equal((await w.run("status", id)).stdoutText, "Running\n");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: image cache — a cache that cannot deploy, or is removed, never breaks a machine",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Its image cannot be pulled: the machine is made without it.
    const broken = await startWorld({
      options: { ...ON, IMAGE_CACHE_IMAGE: "registry-does-not-exist:2" },
    });
    try {
      const r = await broken.run("create", "icb-1");
      mustPass("create with a broken cache", r);
      assert.match(r.stderr, /the shared image cache \S+ is missing on the server/);
      assert.equal((await stateOf(broken, "icb-1")).imageCache, undefined);
      assert.equal((await broken.run("status", "icb-1")).stdoutText, "Running\n");
      const doctor = await runProvider(["doctor"], broken.env("unused"));
      assert.match(
        doctor.stdoutText,
        /✘ image cache\s+server local: \S+ failed to deploy \(once\): .*pull access denied.*machines there pull from Docker Hub/,
      );
      // A failed cache goes with cleanup --yes though a machine is on its server; the
      // machine, which never used it, stays.
      const removed = await runProvider(["cleanup", "--yes"], broken.env("unused"));
      assert.match(
        removed.stdoutText,
        /^deleted image cache \S+ and its prebuild registry \(server local\)$/m,
      );
      assert.deepEqual(await caches(broken), []);
      assert.equal((await broken.run("status", "icb-1")).stdoutText, "Running\n");
    } finally {
      await broken.close();
    }

    // Removed in Dokploy while a machine was stopped: start brings it up without it.
    const w = await startWorld({ options: ON });
    try {
      mustPass("create", await w.run("create", "icr-1"));
      const [cache] = await caches(w);
      mustPass("stop", await w.run("stop", "icr-1"));
      const api = new DokployApi(new DokployClient({ baseUrl: w.emu.url, token: w.emu.token }));
      assert.ok(await api.deleteCompose(cache.composeId, true));
      const start = await w.run("start", "icr-1");
      mustPass("start without the cache", start);
      assert.match(
        start.stderr,
        new RegExp(`the shared image cache ${cache.appName} is missing on the server`),
      );
      assert.equal((await stateOf(w, "icr-1")).imageCache, undefined);
      assert.equal((await w.run("status", "icr-1")).stdoutText, "Running\n");
      // The home volume came through: only the cache went.
      const machine = (await w.emu.snapshot()).composes.find((c) => c.name === "devpod-icr-1");
      assert.ok(machine?.volumes.some((v) => v.endsWith("_home")));
    } finally {
      await w.close();
    }
  },
});
