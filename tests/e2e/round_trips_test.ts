/**
 * Round trips per verb (issue 10): against a real Dokploy each API call costs 0.17-0.5 s,
 * so every verb has a budget of calls, counted through the real entry point as DevPod
 * runs it (see api_calls.ts for what counts: deploy and boot polls do not).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { STATE_FILE } from "../../lib/machine/state.ts";
import { runCounted } from "./api_calls.ts";
import { startWorld, type World } from "./harness.ts";

/**
 * The most calls each case may make. A fresh project costs one more than an existing
 * one: project.create and the project.all re-read that settles parallel first creates
 * (+2), while the create's own answer stands in for project.one (−1).
 */
const BUDGET = {
  "create (fresh project)": 7,
  "create (existing project)": 6,
  "status (running)": 2,
  "stop": 2,
  "status (stopped)": 2,
  "start (stopped)": 3,
  "status without state.json": 3,
  "delete without state.json": 3,
  "delete": 2,
  // IMAGE_CACHE (issue 11): the first create on a server makes the cache (compose.create,
  // compose.deploy; the port check's re-read settles parallel ones); later ones find it.
  "create (first with the image cache)": 8,
  "create (image cache exists)": 6,
} as const;

type Case = keyof typeof BUDGET;

Deno.test({
  name: "round trips: each verb stays within its API call budget",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const w = await startWorld();
    const measured: string[] = [];
    /** Runs the verb, checks it succeeded (and what status printed), then its budget. */
    const within = async (
      name: Case,
      verb: string,
      id: string,
      prints?: string,
      env?: Record<string, string>,
    ) => {
      await t.step(`${name}: ≤ ${BUDGET[name]} calls`, async () => {
        const { result, calls } = await runCounted(w, verb, id, { env });
        assert.equal(result.code, 0, `${verb} failed: ${result.stderr}`);
        if (prints) assert.equal(result.stdoutText, `${prints}\n`);
        measured.push(`${name}: ${calls.length} (${calls.join(" → ")})`);
        assert.ok(
          calls.length <= BUDGET[name],
          `${name} made ${calls.length} calls, budget ${BUDGET[name]}: ${calls.join(" → ")}`,
        );
      });
    };
    try {
      // DevPod runs init when the provider is added: it learns who the key is (user.get),
      // so no verb below asks again (lib/identity).
      assert.equal((await w.run("init", "rt-init")).code, 0);
      await within("create (fresh project)", "create", "rt-first");
      await within("create (existing project)", "create", "rt-second");
      await within("status (running)", "status", "rt-second", "Running");
      await within("stop", "stop", "rt-second");
      await within("status (stopped)", "status", "rt-second", "Stopped");
      await within("start (stopped)", "start", "rt-second");
      await removeStateFile(w, "rt-first");
      await within("status without state.json", "status", "rt-first", "Running");
      await within("delete without state.json", "delete", "rt-first");
      await within("delete", "delete", "rt-second");
      assert.equal((await w.emu.snapshot()).composes.length, 0, "both machines are gone");
      const cache = { IMAGE_CACHE: "true" };
      await within("create (first with the image cache)", "create", "rt-c1", undefined, cache);
      await within("create (image cache exists)", "create", "rt-c2", undefined, cache);
      const names = (await w.emu.snapshot()).composes.map((c) => c.name).sort();
      assert.deepEqual(names, ["devpod-image-cache", "devpod-rt-c1", "devpod-rt-c2"]);
    } finally {
      console.log(measured.map((m) => `  ${m}`).join("\n"));
      await w.close();
    }
  },
});

async function removeStateFile(w: World, id: string) {
  await Deno.remove(join(w.folder(id), STATE_FILE));
}

/** On a remote server chosen by `auto` (issue 13): placement reads server.all and checks it. */
const REMOTE_BUDGET = {
  // A fresh project (7, as above) plus server.all and server.validate.
  "create (auto, 3 servers)": 9,
  "status (remote, running)": 2,
  "stop (remote)": 2,
  "start (remote)": 3,
  "delete (remote: Dokploy must reach it)": 2,
} as const;

Deno.test({
  name: "round trips: on a remote server placed by auto, each verb stays within its budget",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const w = await startWorld({
      servers: ["a", "b", "c"].map((n) => ({ serverId: `srv-${n}`, name: n })),
      options: { DOKPLOY_SERVER_ID: "auto" },
    });
    const measured: string[] = [];
    try {
      assert.equal((await w.run("init", "rt-init")).code, 0, "as at provider add");
      for (
        const [name, verb] of [
          ["create (auto, 3 servers)", "create"],
          ["status (remote, running)", "status"],
          ["stop (remote)", "stop"],
          ["start (remote)", "start"],
          ["delete (remote: Dokploy must reach it)", "delete"],
        ] as [keyof typeof REMOTE_BUDGET, string][]
      ) {
        await t.step(`${name}: ≤ ${REMOTE_BUDGET[name]} calls`, async () => {
          const { result, calls } = await runCounted(w, verb, "rt-remote");
          assert.equal(result.code, 0, `${verb} failed: ${result.stderr}`);
          measured.push(`${name}: ${calls.length} (${calls.join(" → ")})`);
          assert.ok(calls.length <= REMOTE_BUDGET[name], `${name}: ${calls.join(" → ")}`);
        });
      }
    } finally {
      console.log(measured.map((m) => `  ${m}`).join("\n"));
      await w.close();
    }
  },
});
