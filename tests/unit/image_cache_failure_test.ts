/**
 * A cache whose deploy failed (issue 18), against a scripted Dokploy: the failure is
 * recorded once with its reason, skipped at no call within the back-off, retried by
 * exactly one create after it (the first machine made since), and cleared once it
 * deploys fine.
 */
import assert from "node:assert/strict";
import { ensureImageCache, retryIsMine, settleImageCache } from "../../lib/cache/ensure.ts";
import {
  type CacheFailure,
  failureAt,
  parseFailure,
  reasonFromLog,
  retryDelayMs,
} from "../../lib/cache/failure.ts";
import { describeCache, parseCacheMarker } from "../../lib/cache/spec.ts";
import { cacheDeps, cacheRow, scriptedDokploy } from "./cache_dokploy.ts";

const PULL_LOG = [
  "App Name: devpod-image-cache-old111",
  "Command: docker compose -p devpod-image-cache-old111 -f docker-compose.yml up -d",
  " registry Pulling",
  " registry Error pull access denied for registry-does-not-exist, repository does not exist",
  "Error response from daemon: pull access denied for registry-does-not-exist, repository does not exist or may require 'docker login'",
  "Error: ❌ Docker command failed",
].join("\n");
const PULL_REASON =
  "Error response from daemon: pull access denied for registry-does-not-exist, repository does not exist or may require 'docker login'";

const MIN = 60_000;
const T0 = "2026-12-01T10:00:00.000Z";
const plus = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

/** A cache recorded as failed at T0 (attempt `attempts`), retried from its retryAt. */
function failedRow(attempts = 1, over: Parameters<typeof cacheRow>[0] = {}) {
  const failure = failureAt(attempts, T0, PULL_REASON);
  return {
    failure,
    row: cacheRow({
      composeStatus: "error",
      description: describeCache(null, "v9", failure),
      ...over,
    }),
  };
}

const machine = (id: string, createdAt: string) => ({ composeId: id, createdAt, serverId: null });

function recorded(description: string): CacheFailure | null {
  return parseCacheMarker(description)?.failure ?? null;
}

const warnings = (lines: string[]) => lines.filter((l) => l.startsWith("warn "));

Deno.test("cache failure: the record round-trips in the description and keeps its marker", () => {
  const f = failureAt(2, "2026-12-01T10:00:00Z", "toomanyrequests:\n  rate limit");
  assert.deepEqual(f, {
    attempts: 2,
    failedAt: T0,
    retryAt: "2026-12-01T11:00:00.000Z",
    reason: "toomanyrequests: rate limit",
  });
  const text = describeCache("srv-1", "v9", f);
  assert.deepEqual(parseCacheMarker(text), {
    serverId: "srv-1",
    failure: f,
    prebuilds: false,
    agents: false,
  });
  assert.equal(parseFailure(describeCache("srv-1", "v9")), null);
  assert.equal(parseFailure(text.replace("retry=2026", "retry=never")), null, "garbled: ignored");
});

Deno.test("cache failure: back-off of 30 min, doubling, at most 4 h", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 12].map((n) => retryDelayMs(n) / MIN), [
    30,
    60,
    120,
    240,
    240,
    240,
  ]);
});

Deno.test("cache failure: the reason is the log's telling line, not Dokploy's closing one", () => {
  assert.equal(reasonFromLog(PULL_LOG), PULL_REASON);
  const limited = "registry Pulling\n\x1b[31mError response from daemon: toomanyrequests: " +
    "You have reached your unauthenticated pull rate limit\x1b[0m\nError: ❌ Docker command failed";
  assert.equal(
    reasonFromLog(limited),
    "Error response from daemon: toomanyrequests: You have reached your unauthenticated pull rate limit",
  );
  // No log (Dokploy could not reach the server): its errorMessage.
  assert.equal(
    reasonFromLog("", "An error have occurred: SSH connection error"),
    "An error have occurred: SSH connection error",
  );
  assert.equal(reasonFromLog(""), "Dokploy kept no deploy log");
  assert.ok(reasonFromLog(`Error ${"x".repeat(1000)}`).length <= 240);
});

Deno.test("cache failure: within the back-off a create skips it at no call, with one warning", async () => {
  const { row, failure } = failedRow(1);
  const f = scriptedDokploy([row]);
  const { d, lines } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.equal(plan.appName, null, "no mirror");
  // Made before the retry time: not the one to retry.
  const settled = await settleImageCache(d, plan, f.snapshot(), machine("m1", plus(T0, 5 * MIN)));
  assert.equal(settled.appName, null);
  await settled.afterDeploy(null, Promise.resolve());
  assert.deepEqual(f.calls, [], "no deploy queued, no call at all");
  const warned = warnings(lines);
  assert.equal(warned.length, 1, lines.join("\n"));
  assert.ok(warned[0].includes(PULL_REASON), warned[0]);
  assert.match(warned[0], /pulls images from Docker Hub/);
  assert.match(warned[0], /first create after 2026-12-01 10:30 UTC/);
  assert.match(warned[0], /IMAGE_CACHE_IMAGE.*doctor --fix.*cleanup --yes/);
  assert.equal(recorded(f.row("old").description)?.retryAt, failure.retryAt, "record untouched");
});

Deno.test("cache failure: the first create to see an unrecorded failure records it, reason from the log", async () => {
  const f = scriptedDokploy([cacheRow({ composeStatus: "error" })]);
  const dep = f.addDeploy("old", {
    status: "error",
    createdAt: "2026-12-01T09:59:50.000Z",
    finishedAt: T0,
    log: PULL_LOG,
  });
  const { d, lines } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.equal(plan.appName, null);
  const settled = await settleImageCache(d, plan, f.snapshot(), machine("m1", plus(T0, MIN)));
  assert.deepEqual(f.calls, [], "nothing before the machine's deploy");
  await settled.afterDeploy(null, Promise.resolve());
  assert.deepEqual(f.calls, [
    "deployment.allByCompose old",
    `deployment.readLogs ${dep}`,
    "compose.update old",
  ]);
  // The back-off counts from this run's machine (found a minute after the failure): no
  // machine that exists already could be taken for the first one made after it.
  assert.deepEqual(recorded(f.row("old").description), {
    attempts: 1,
    failedAt: T0,
    retryAt: "2026-12-01T10:31:00.000Z",
    reason: PULL_REASON,
  });
  assert.equal(warnings(lines).length, 1);
  assert.ok(warnings(lines)[0].includes(PULL_REASON));

  // The next create finds the record in its snapshot: no call of its own.
  const next = scriptedDokploy([{ ...f.row("old") }]);
  const again = cacheDeps(next.api);
  const plan2 = await ensureImageCache(again.d, next.snapshot(), "e1", null);
  const settled2 = await settleImageCache(
    again.d,
    plan2,
    next.snapshot(),
    machine("m2", plus(T0, 2 * MIN)),
  );
  await settled2.afterDeploy(null, Promise.resolve());
  assert.deepEqual(next.calls, []);
});

Deno.test("cache failure: the first create's machine dropped the cache it deployed: recorded", async () => {
  const f = scriptedDokploy([], { deployEnds: { status: "error", at: T0, log: PULL_LOG } });
  const { d, lines } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.equal(plan.appName, "devpod-image-cache-zz1", "the first machine tries it");
  const settled = await settleImageCache(d, plan, f.snapshot(), machine("m1", plus(T0, -MIN)));
  assert.equal(settled.appName, "devpod-image-cache-zz1");
  // Its network never came: the machine's deploy went on without it (fallback.ts).
  await settled.afterDeploy(null, Promise.resolve());
  assert.equal(recorded(f.row("mine-1").description)?.reason, PULL_REASON);
  assert.equal(recorded(f.row("mine-1").description)?.attempts, 1);
  assert.ok(warnings(lines).some((w) => w.includes(PULL_REASON)));
});

Deno.test("cache failure: after the back-off only the first machine made since retries, after its deploy", async () => {
  const { row, failure } = failedRow(1);
  const due = failure.retryAt;
  // Three parallel creates after the retry time; one machine from before it.
  const early = machine("m0", plus(due, -MIN));
  const a = machine("ma", plus(due, 1000));
  const b = machine("mb", plus(due, 2000));
  const c = machine("mc", plus(due, 3000));
  const f = scriptedDokploy([row], {
    machines: [early, a, b, c],
    deployEnds: { status: "error", at: plus(due, 10_000), log: PULL_LOG },
  });
  // Each create re-read after making its own machine: it sees those made before it
  // (and maybe later ones); whichever it sees, only `a` retries.
  const views = [
    { mine: a, sees: [early, a] },
    { mine: b, sees: [early, a, b] },
    { mine: c, sees: [a, b, c] },
    { mine: b, sees: [early, a, b, c] },
  ];
  for (const { mine, sees } of views) {
    const fresh = { ...f.snapshot() };
    fresh.machines = fresh.machines.filter((m) =>
      sees.some((s) => s.composeId === m.compose.composeId)
    );
    assert.equal(
      retryIsMine(failure, mine, fresh, null),
      mine === a,
      `${mine.composeId} sees ${sees.length}`,
    );
  }
  assert.equal(
    retryIsMine(failure, early, f.snapshot(), null),
    false,
    "made before the retry time",
  );

  // The losers: without the cache, at no call.
  const loser = cacheDeps(f.api);
  const lost = await settleImageCache(
    loser.d,
    await ensureImageCache(loser.d, f.snapshot(), "e1", null),
    f.snapshot(),
    b,
  );
  await lost.afterDeploy(null, Promise.resolve());
  assert.deepEqual(f.calls, []);

  // The winner: without the cache too (its machine never waits on it); after the machine's
  // deploy it deploys the cache with the current options and counts the retry as failed
  // until it is seen to work.
  const { d, lines } = cacheDeps(f.api, { IMAGE_CACHE_IMAGE: "registry:2.8.3" });
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  const won = await settleImageCache(d, plan, f.snapshot(), a);
  assert.equal(won.appName, null);
  assert.deepEqual(f.calls, [], "nothing queued ahead of the machine");
  assert.match(warnings(lines)[0], /This create retries it once the machine is deployed/);
  let release = () => {};
  const booted = new Promise<void>((r) => release = r);
  const following = won.afterDeploy(null, booted);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(f.calls, ["compose.update old", "compose.deploy old"], "beside the boot");
  assert.match(f.row("old").composeFile ?? "", /image: registry:2.8.3/);
  const claim = recorded(f.row("old").description);
  assert.equal(claim?.attempts, 2);
  assert.equal(claim?.retryAt, plus(a.createdAt, 60 * MIN), "next interval doubled");
  release();
  await following;
  // It failed again: the new reason is read once and kept with the claimed interval.
  assert.deepEqual(f.calls.slice(2), [
    "deployment.allByCompose old",
    "deployment.readLogs dep-old-1",
    "compose.update old",
  ]);
  assert.deepEqual(recorded(f.row("old").description), { ...claim, reason: PULL_REASON });
  assert.equal(warnings(lines).length, 1, "one warning");
});

Deno.test("cache failure: a retry that deploys fine clears the record", async () => {
  const { row, failure } = failedRow(3);
  const a = machine("ma", plus(failure.retryAt, 1000));
  const f = scriptedDokploy([row], {
    machines: [a],
    deployEnds: { status: "done", at: plus(failure.retryAt, 5000) },
  });
  const { d, lines } = cacheDeps(f.api);
  const won = await settleImageCache(
    d,
    await ensureImageCache(d, f.snapshot(), "e1", null),
    f.snapshot(),
    a,
  );
  await won.afterDeploy(null, Promise.resolve());
  assert.equal(recorded(f.row("old").description), null);
  // Retried with the file these options give, prebuild registry and agent cache included.
  assert.equal(f.row("old").description, describeCache(null, "v9", null, true, true));
  assert.match(lines.join("\n"), /deployed fine: the next machines use it/);

  // Had the machine booted before the deploy ran, the next create finds it done: it uses
  // the cache and clears the record.
  const g = scriptedDokploy([failedRow(3, { composeStatus: "done" }).row]);
  const next = cacheDeps(g.api);
  const plan = await ensureImageCache(next.d, g.snapshot(), "e1", null);
  assert.equal(plan.appName, "devpod-image-cache-old111");
  const settled = await settleImageCache(next.d, plan, g.snapshot(), a);
  assert.equal(settled.appName, "devpod-image-cache-old111");
  await settled.afterDeploy("devpod-image-cache-old111", Promise.resolve());
  assert.deepEqual(g.calls, ["compose.update old"]);
  assert.equal(recorded(g.row("old").description), null);
});

Deno.test("cache failure: a retry still running when the machine is up is left to the next create", async () => {
  const { row, failure } = failedRow(1);
  const a = machine("ma", plus(failure.retryAt, 1000));
  const f = scriptedDokploy([row], { machines: [a] }); // its deploy stays queued
  f.addDeploy("old", { status: "error", createdAt: plus(T0, -MIN), finishedAt: T0, log: PULL_LOG });
  const { d } = cacheDeps(f.api);
  const won = await settleImageCache(
    d,
    await ensureImageCache(d, f.snapshot(), "e1", null),
    f.snapshot(),
    a,
  );
  await won.afterDeploy(null, Promise.resolve());
  // The old failed deploy is not taken for the retry's outcome.
  assert.deepEqual(f.calls, [
    "compose.update old",
    "compose.deploy old",
    "deployment.allByCompose old",
  ]);
  assert.equal(recorded(f.row("old").description)?.attempts, 2, "counted as failed meanwhile");

  // While it deploys, creates skip it without retrying.
  f.row("old").composeStatus = "running";
  const later = cacheDeps(f.api);
  const b = machine("mb", plus(failure.retryAt, 2000));
  const plan = await ensureImageCache(later.d, f.snapshot(), "e1", null);
  const skipped = await settleImageCache(later.d, plan, f.snapshot(), b);
  assert.equal(skipped.appName, null);
  assert.match(warnings(later.lines)[0], /being deployed again right now/);
});
