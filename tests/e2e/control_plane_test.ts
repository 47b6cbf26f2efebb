/**
 * Control-plane faults (issue 12): Dokploy restarts mid-verb, 502/503/504 bursts and
 * connections dropped after the call took effect. For each, the verb either succeeds
 * within the retry window or fails with one clear line, the next run converges, and
 * nothing is left behind. Ends with a figure line for the reliability table.
 */
import assert from "node:assert/strict";
import { orphans, spawnVerb } from "./fault_support.ts";
import { type RunResult, startWorld, type World } from "./harness.ts";
import { ok, waitFor } from "../emulator/test_support.ts";

/** Short, so a scenario that must give up does so quickly; a restart takes DOWN_MS. */
const RETRY_WINDOW = "20s";
const DOWN_MS = 3000;
/** Far above window + deploy + boot: only a hang reaches it. */
const RUN_TIMEOUT_MS = 150_000;
/** Older than the provider's lost-deploy threshold (3 min). */
const LONG_AGO_MS = 11 * 60_000;
/** The provider's once-per-run outage notice. */
const UNAVAILABLE = /Dokploy at \S+ is unavailable/;

interface Scenario {
  name: string;
  /** Dokploy restarts this scenario injects / deploys it makes Dokploy lose. */
  restarts: number;
  lostDeploys: number;
  /** Returns the orphans it left. */
  run: () => Promise<number>;
}

const scenarios: Scenario[] = [];
const scenario = (
  name: string,
  faults: { restarts?: number; lostDeploys?: number },
  run: Scenario["run"],
) => scenarios.push({ name, restarts: 0, lostDeploys: 0, ...faults, run });

async function world(deployDelayMs = 50): Promise<World> {
  return await startWorld({ deployDelayMs, options: { DOKPLOY_RETRY_WINDOW: RETRY_WINDOW } });
}

const run = (w: World, verb: string, id: string, command?: string) =>
  w.run(verb, id, { timeoutMs: RUN_TIMEOUT_MS, command });

/**
 * Restarts Dokploy while the first call to `procedure` is in flight: the call is held
 * (delayMs) so the restart drops it unanswered and unhandled.
 */
function restartDuring(
  w: World,
  procedure: string,
  beforeRestart: () => unknown = () => {},
) {
  let restarted: Promise<void> | undefined;
  w.emu.faults.add({
    procedure,
    delayMs: 60_000,
    onMatch: () => {
      restarted = (async () => {
        await beforeRestart();
        await w.emu.restart({ downMs: DOWN_MS });
      })();
    },
  });
  return {
    /** Asserts the restart happened and waits until Dokploy is back. */
    async happened() {
      assert.ok(restarted, `no ${procedure} call: Dokploy was never restarted`);
      await restarted;
    },
  };
}

/**
 * A verb under faults either succeeded or failed with one clear line (besides the
 * outage notice, said at most once). Returns whether it succeeded.
 */
function succeededOrOneLine(r: RunResult, verb: string): boolean {
  const notices = r.stderr.split("\n").filter((l) => UNAVAILABLE.test(l));
  assert.ok(notices.length <= 1, `${verb}: outage notice repeated:\n${r.stderr}`);
  if (r.code === 0) return true;
  const lines = r.stderr.trimEnd().split("\n").filter((l) => l && !UNAVAILABLE.test(l));
  assert.equal(lines.length, 1, `${verb}: expected one error line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, `${verb}: no stack trace`);
  return false;
}

/**
 * Runs `verb` under the armed fault; when it failed, the next run must converge. A verb
 * that met an outage (`outage`) must have said so.
 */
async function verbThenConverge(
  w: World,
  verb: string,
  id: string,
  { outage = true } = {},
): Promise<RunResult> {
  const first = await run(w, verb, id);
  if (outage) assert.match(first.stderr, UNAVAILABLE, `${verb}: no outage notice`);
  if (succeededOrOneLine(first, verb)) return first;
  const again = await run(w, verb, id);
  assert.equal(again.code, 0, `${verb} again: ${again.stderr}`);
  return again;
}

async function assertStatus(w: World, id: string, expected: string) {
  const s = await run(w, "status", id);
  assert.equal(s.stdoutText, `${expected}\n`, `status: ${s.stderr}`);
}

/** One machine, usable (a command runs), then deleted: what every scenario ends with. */
async function usableThenDeleted(w: World, id: string): Promise<number> {
  assert.equal((await w.emu.snapshot()).composes.length, 1, "exactly one service");
  await assertStatus(w, id, "Running");
  const cmd = await run(w, "command", id, "echo alive");
  assert.equal(cmd.stdoutText, "alive\n", cmd.stderr);
  const del = await run(w, "delete", id);
  assert.equal(del.code, 0, del.stderr);
  assert.equal((await w.emu.snapshot()).composes.length, 0, "deleted");
  return await orphans(w, [id]);
}

/**
 * Until Dokploy's queue worker has started the deploy (its row exists, `running`): a
 * restart then loses a running deploy, not merely a queued one.
 */
const deployStarted = (w: World) =>
  waitFor(
    "the deploy to start",
    async () => (await w.emu.snapshot()).composes[0]?.composeStatus === "running",
  );

/** Dokploy's record of the deploy the restart lost: still `running`, next to a done one. */
async function assertLostDeployLeft(w: World) {
  const [{ composeId }] = (await w.emu.snapshot()).composes;
  const rows = await ok<{ status: string }[]>(w.emu, "GET", "deployment.allByCompose", {
    composeId,
  });
  const statuses = rows.map((d) => d.status);
  assert.ok(statuses.includes("running"), `no lost deploy: ${statuses}`);
  assert.ok(statuses.includes("done"), `not redeployed: ${statuses}`);
}

/**
 * A create killed while its deploy runs, Dokploy restarting then: the deploy is lost
 * (its row `running` for ever, no container), as a user's interrupted `devpod up` leaves it.
 */
async function createLosingItsDeploy(w: World, id: string) {
  const child = await spawnVerb(w, "create", id);
  const restart = restartDuring(w, "deployment.allByCompose", () => {
    child.kill("SIGKILL");
    return deployStarted(w);
  });
  await child.output();
  await restart.happened();
}

/** Deploys and redeploys asked of Dokploy since request number `before`. */
const deploysSince = (w: World, before: number) =>
  w.emu.requests.slice(before).filter((q) => /^compose\.(re)?deploy$/.test(q.procedure)).length;

async function created(w: World, id: string) {
  const r = await run(w, "create", id);
  assert.equal(r.code, 0, r.stderr);
}

// create: before compose.create took effect, right after it, and during the deploy.
for (
  const [step, procedure, lostDeploys] of [
    ["before compose.create", "compose.create", 0],
    ["right after compose.create", "compose.update", 0],
    ["during the deploy", "deployment.allByCompose", 1],
  ] as const
) {
  scenario(`create: Dokploy restarts ${step}`, { restarts: 1, lostDeploys }, async () => {
    // A slow deploy, so the restart finds it still queued in Dokploy's memory.
    const w = await world(lostDeploys ? 5000 : 50);
    try {
      const restart = restartDuring(w, procedure, () => lostDeploys && deployStarted(w));
      await verbThenConverge(w, "create", "r-create");
      await restart.happened();
      if (lostDeploys) await assertLostDeployLeft(w);
      return await usableThenDeleted(w, "r-create");
    } finally {
      await w.close();
    }
  });
}

scenario("start: Dokploy restarts during compose.start", { restarts: 1 }, async () => {
  const w = await world();
  try {
    await created(w, "r-start");
    assert.equal((await run(w, "stop", "r-start")).code, 0);
    const restart = restartDuring(w, "compose.start");
    await verbThenConverge(w, "start", "r-start");
    await restart.happened();
    return await usableThenDeleted(w, "r-start");
  } finally {
    await w.close();
  }
});

scenario("stop: Dokploy restarts during compose.stop", { restarts: 1 }, async () => {
  const w = await world();
  try {
    await created(w, "r-stop");
    const restart = restartDuring(w, "compose.stop");
    await verbThenConverge(w, "stop", "r-stop");
    await restart.happened();
    await assertStatus(w, "r-stop", "Stopped");
    assert.equal((await run(w, "start", "r-stop")).code, 0);
    return await usableThenDeleted(w, "r-stop");
  } finally {
    await w.close();
  }
});

scenario("delete: Dokploy restarts during compose.delete", { restarts: 1 }, async () => {
  const w = await world();
  try {
    await created(w, "r-delete");
    const restart = restartDuring(w, "compose.delete");
    await verbThenConverge(w, "delete", "r-delete");
    await restart.happened();
    assert.equal((await w.emu.snapshot()).composes.length, 0, "deleted");
    await assertStatus(w, "r-delete", "NotFound");
    return await orphans(w, ["r-delete"]);
  } finally {
    await w.close();
  }
});

scenario("status: Dokploy restarts during compose.one", { restarts: 1 }, async () => {
  const w = await world();
  try {
    await created(w, "r-status");
    const restart = restartDuring(w, "compose.one");
    // status says nothing when it rides the outage out (the maintained DevPod logs its
    // stderr on every poll); only a status that fails carries the notice.
    const first = await run(w, "status", "r-status");
    await restart.happened();
    const s = succeededOrOneLine(first, "status") ? first : await run(w, "status", "r-status");
    assert.equal(s.stdoutText, "Running\n", s.stderr);
    if (s === first) assert.equal(first.stderr, "", "a successful status is silent");
    else assert.match(first.stderr, UNAVAILABLE, "a failed status says why");
    return await usableThenDeleted(w, "r-status");
  } finally {
    await w.close();
  }
});

scenario("502/503/504 bursts: create and status ride them out, one notice", {}, async () => {
  const w = await world();
  try {
    w.emu.faults.add({ procedure: "*", status: 503, times: 3 });
    w.emu.faults.add({ procedure: "compose.deploy", status: 502, times: 2 });
    const c = await run(w, "create", "burst");
    assert.equal(c.code, 0, c.stderr);
    assert.ok(succeededOrOneLine(c, "create"));
    assert.match(c.stderr, UNAVAILABLE);
    w.emu.faults.add({ procedure: "*", status: 504, times: 3 });
    const s = await run(w, "status", "burst");
    assert.ok(succeededOrOneLine(s, "status"));
    assert.equal(s.stdoutText, "Running\n", s.stderr);
    assert.equal(s.stderr, "", "status rode the burst out silently");
    return await usableThenDeleted(w, "burst");
  } finally {
    await w.close();
  }
});

for (const procedure of ["compose.create", "compose.deploy"]) {
  scenario(`${procedure} took effect, then the connection dropped`, {}, async () => {
    const w = await world();
    try {
      w.emu.faults.add({ procedure, dropAfter: true });
      await verbThenConverge(w, "create", "dropped", { outage: false });
      const dropped = w.emu.requests.filter((r) => r.procedure === procedure && r.status === 0);
      assert.equal(dropped.length, 1, "the fault was hit");
      return await usableThenDeleted(w, "dropped"); // one service, not two
    } finally {
      await w.close();
    }
  });
}

/**
 * A create killed while its deploy is queued, with Dokploy restarting then: the deploy
 * is lost (running forever, no container). Long after, the machine must read Stopped
 * and the next `recover` verb must redeploy it.
 */
for (const recover of ["start", "create"]) {
  scenario(
    `lost deploy found later: status Stopped, ${recover} redeploys`,
    { restarts: 1, lostDeploys: 1 },
    async () => {
      const w = await world(5000);
      try {
        await createLosingItsDeploy(w, "lost");
        w.emu.backdate(LONG_AGO_MS);
        const [lostRow] = (await w.emu.snapshot()).composes;
        assert.equal(lostRow.composeStatus, "running", "Dokploy still says running");
        assert.equal(lostRow.container.state, "none");
        await assertStatus(w, "lost", "Stopped");
        const before = w.emu.requests.length;
        const r = await run(w, recover, "lost");
        assert.equal(r.code, 0, r.stderr);
        assert.equal(deploysSince(w, before), 1, "redeployed once");
        return await usableThenDeleted(w, "lost");
      } finally {
        await w.close();
      }
    },
  );
}

/**
 * `start` right after the restart: the lost deploy is still young, so start waits for it
 * as for a live one — and must notice once it ages past the threshold, not wait out
 * READY_TIMEOUT.
 */
scenario(
  "lost deploy still young: start waits, then notices and redeploys",
  { restarts: 1, lostDeploys: 1 },
  async () => {
    const w = await world(5000);
    try {
      await createLosingItsDeploy(w, "young");
      const before = w.emu.requests.length;
      const start = await spawnVerb(w, "start", "young");
      const output = start.output();
      // Start is now waiting on the "running" deploy; later the deploy is old.
      await waitFor(
        "start to wait on the deploy",
        () => w.emu.requests.slice(before).filter((q) => q.procedure === "compose.one").length >= 2,
        30_000,
      );
      w.emu.backdate(LONG_AGO_MS);
      const done = await output;
      const stderr = new TextDecoder().decode(done.stderr);
      assert.equal(done.code, 0, stderr);
      assert.match(stderr, /in progress; waiting for it/);
      assert.match(stderr, /was lost .*deploying it again/);
      assert.equal(deploysSince(w, before), 1, "redeployed once");
      return await usableThenDeleted(w, "young");
    } finally {
      await w.close();
    }
  },
);

/**
 * A redeploy lost before its `docker compose up`: the machine from the earlier deploy
 * still runs, and Dokploy says `running` for ever. Status must say Running (not Busy for
 * ever), and start must deploy it again once and work.
 */
scenario(
  "lost redeploy next to a running machine: status Running, start redeploys",
  { restarts: 1, lostDeploys: 1 },
  async () => {
    const w = await world(5000);
    try {
      await created(w, "beside");
      const [{ composeId }] = (await w.emu.snapshot()).composes;
      await ok(w.emu, "POST", "compose.redeploy", { composeId });
      await deployStarted(w);
      await w.emu.restart({ downMs: DOWN_MS });
      w.emu.backdate(LONG_AGO_MS);
      const [row] = (await w.emu.snapshot()).composes;
      assert.equal(row.composeStatus, "running", "Dokploy still says running");
      assert.equal(row.container.state, "running", "the machine runs");
      await assertStatus(w, "beside", "Running");
      const before = w.emu.requests.length;
      const start = await run(w, "start", "beside");
      assert.equal(start.code, 0, start.stderr);
      assert.equal(deploysSince(w, before), 1, "redeployed once");
      return await usableThenDeleted(w, "beside");
    } finally {
      await w.close();
    }
  },
);

Deno.test({
  name: "control plane: Dokploy restarts, bursts and dropped answers, with figures",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const totals = { restarts: 0, survived: 0, lost: 0, recovered: 0, orphans: 0 };
    const failures: string[] = [];
    const queue = [...scenarios];
    const worker = async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        totals.restarts += s.restarts;
        totals.lost += s.lostDeploys;
        try {
          totals.orphans += await s.run();
          totals.survived += s.restarts;
          totals.recovered += s.lostDeploys;
          console.log(`  ✔ ${s.name}`);
        } catch (err) {
          failures.push(`${s.name}: ${(err as Error).message}`);
          console.log(`  ✘ ${s.name}: ${(err as Error).message}`);
        }
      }
    };
    // Two at a time: each scenario holds a Dokploy down for seconds; CI has 2 cores.
    await Promise.all([worker(), worker()]);
    console.log(
      [
        "",
        "| figure | value |",
        "|---|---|",
        `| restarts survived | ${totals.survived}/${totals.restarts} |`,
        `| lost deploys recovered | ${totals.recovered}/${totals.lost} |`,
        `| orphans | ${totals.orphans} |`,
      ].join("\n"),
    );
    assert.deepEqual(failures, []);
    assert.equal(totals.orphans, 0);
  },
});
