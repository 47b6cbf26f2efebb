/**
 * Surviving the control plane (issue 12): Dokploy restarts (~20 s down, its deploy
 * queue lost) and answers lost mid-call, through the real entry point.
 */
import assert from "node:assert/strict";
import { readState } from "../../lib/machine/state.ts";
import { type RunResult, startWorld } from "./harness.ts";

const TOKEN = `dkp-OUTAGE-${crypto.randomUUID().replaceAll("-", "")}`;
const e2e = { sanitizeOps: false, sanitizeResources: false };

function assertClean(r: RunResult, verb: string) {
  assert.equal(r.code, 0, `${verb}: ${r.stderr}`);
  assert.ok(!r.stderr.includes(TOKEN) && !r.stdoutText.includes(TOKEN), "the token never shows");
}

Deno.test({
  ...e2e,
  name: "outage e2e: status rides out a Dokploy restart silently, and says so when it gives up",
  async fn() {
    const w = await startWorld({ token: TOKEN });
    try {
      assertClean(await w.run("create", "out-a"), "create");
      // Dokploy goes down while status's first call is in flight.
      w.emu.faults.add({
        procedure: "compose.one",
        delayMs: 200,
        onMatch: () => void w.emu.restart({ downMs: 2000 }),
      });
      const status = await w.run("status", "out-a");
      assertClean(status, "status");
      assert.equal(status.stdoutText, "Running\n");
      // The maintained DevPod logs status's stderr on every poll: a success says nothing.
      assert.equal(status.stderr, "");

      // Down for longer than the retry window: the notice, then the error, one line each.
      w.emu.faults.add({
        procedure: "compose.one",
        delayMs: 200,
        onMatch: () => void w.emu.restart({ downMs: 4000 }),
      });
      const failed = await w.run("status", "out-a", { env: { DOKPLOY_RETRY_WINDOW: "1s" } });
      assert.notEqual(failed.code, 0);
      assert.equal(failed.stdout.length, 0, "never a status word on failure");
      const lines = failed.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 2, failed.stderr);
      assert.match(
        lines[0],
        /Dokploy at http:\/\/127\.0\.0\.1:\d+ is unavailable .*retrying for up to 1s/,
      );
      assert.match(lines[1], /^devpod-provider-dokploy: .*raise DOKPLOY_RETRY_WINDOW/);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...e2e,
  name: "outage e2e: a create whose answer was lost adopts the service Dokploy made",
  async fn() {
    const w = await startWorld({ token: TOKEN });
    try {
      w.emu.faults.add({ procedure: "compose.create", dropAfter: true });
      const create = await w.run("create", "out-b");
      assertClean(create, "create");
      assert.match(create.stderr, /Dokploy made the service; adopting it/);
      assert.equal((await w.emu.snapshot()).composes.length, 1, "no duplicate service");
      assert.equal((await w.run("status", "out-b")).stdoutText, "Running\n");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...e2e,
  name: "outage e2e: a deploy lost in a restart during create is deployed again",
  async fn() {
    const w = await startWorld({ token: TOKEN, deployDelayMs: 1500 });
    try {
      // The first poll after compose.deploy: the deploy is queued or running.
      w.emu.faults.add({
        procedure: "deployment.allByCompose",
        delayMs: 100,
        onMatch: () => void w.emu.restart({ downMs: 1500 }),
      });
      const create = await w.run("create", "out-c");
      assertClean(create, "create");
      assert.match(
        create.stderr,
        /Dokploy was down during the deploy and lost it; deploying again/,
      );
      assert.equal((await w.run("status", "out-c")).stdoutText, "Running\n");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...e2e,
  name: "outage e2e: a rollback that cannot reach Dokploy leaves the service to adopt or remove",
  async fn() {
    const w = await startWorld({ token: TOKEN, options: { DOKPLOY_RETRY_WINDOW: "1s" } });
    const failCreate = async (id: string) => {
      w.emu.faults.add({ procedure: "compose.deploy", status: 400 });
      w.emu.faults.add({ procedure: "compose.delete", status: 503, times: Infinity });
      const r = await w.run("create", id);
      w.emu.faults.clear();
      assert.notEqual(r.code, 0);
      const said = r.stderr.split("\n").filter((l) => l.includes("the next create"));
      assert.equal(said.length, 1, r.stderr);
      assert.match(
        said[0],
        new RegExp(`the next create of machine ${id} adopts it, the next delete removes it$`),
      );
      assert.equal(await readState(w.folder(id)), null, "rollback drops state.json");
      return (await w.emu.snapshot()).composes.find((c) => c.name === `devpod-${id}`)!;
    };
    try {
      const left = await failCreate("out-d");
      const create = await w.run("create", "out-d");
      assertClean(create, "create");
      assert.match(create.stderr, /already exists in Dokploy; adopting it/);
      const after = (await w.emu.snapshot()).composes;
      assert.deepEqual(after.map((c) => c.composeId), [left.composeId], "adopted, not duplicated");

      await failCreate("out-e");
      assertClean(await w.run("delete", "out-e"), "delete");
      const names = (await w.emu.snapshot()).composes.map((c) => c.name);
      assert.deepEqual(names, ["devpod-out-d"], "delete found it by marker, without state.json");
    } finally {
      await w.close();
    }
  },
});
