/**
 * A shared image cache whose image cannot be pulled (issue 18), through the real entry
 * point on the fast (host) runtime, where an image named `…does-not-exist…` fails its
 * pull as Docker Hub's "pull access denied". The first create tries it once; every create
 * after it skips it at once — no deploy queued, no extra call, one warning that says why
 * — until the back-off is over, when exactly one of several parallel creates retries;
 * `doctor` says why and when, `doctor --fix` retries now with the current options.
 * Create times beside a broken cache are the bench's (scripts/bench_cache.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { failureAt } from "../../lib/cache/failure.ts";
import { describeCache, parseCacheMarker } from "../../lib/cache/spec.ts";
import { DokployApi } from "../../lib/dokploy/api.ts";
import { DokployClient } from "../../lib/dokploy/client.ts";
import { type MachineState, STATE_FILE } from "../../lib/machine/state.ts";
import { runCounted } from "./api_calls.ts";
import { runProvider, startWorld, type World } from "./harness.ts";

const BROKEN = { IMAGE_CACHE: "true", IMAGE_CACHE_IMAGE: "registry-does-not-exist:2" };
const PULL_ERROR = /pull access denied for registry-does-not-exist/;

function mustPass(what: string, r: { code: number; stderr: string }) {
  assert.equal(r.code, 0, `${what} failed: ${r.stderr}`);
}

async function stateOf(w: World, id: string): Promise<MachineState> {
  return JSON.parse(await Deno.readTextFile(join(w.folder(id), STATE_FILE)));
}

/** The compose.deploy requests for one service so far. */
function deploysOf(w: World, composeId: string): number {
  return w.emu.requests.filter((r) =>
    r.procedure === "compose.deploy" && (r.body as { composeId?: string })?.composeId === composeId
  ).length;
}

const warningsIn = (stderr: string) => stderr.split("\n").filter((l) => l.includes("warning:"));

/** One create beside the recorded failure: up at once, without the cache, one warning saying why. */
async function assertSkipped(w: World, id: string, r: { code: number; stderr: string }) {
  mustPass(`create ${id}`, r);
  const warned = warningsIn(r.stderr);
  assert.equal(warned.length, 1, `${id}: one warning, got:\n${r.stderr}`);
  assert.match(warned[0], PULL_ERROR);
  assert.match(warned[0], /this machine pulls images from Docker Hub/);
  assert.match(warned[0], /IMAGE_CACHE_IMAGE.*doctor --fix.*cleanup --yes/);
  assert.doesNotMatch(r.stderr, /is missing on the server/, `${id} never tried the cache`);
  assert.equal((await stateOf(w, id)).imageCache, undefined, `${id} has no mirror`);
}

Deno.test({
  name: "e2e: image cache — a cache that cannot be pulled costs one deploy, not one per create",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ options: BROKEN });
    const human = w.env("unused");
    const api = new DokployApi(new DokployClient({ baseUrl: w.emu.url, token: w.emu.token }));
    try {
      // The first create makes the cache and tries it: its machine falls back and the
      // failure is recorded with the deploy log's reason.
      const first = await w.run("create", "icf-1");
      mustPass("create icf-1", first);
      assert.match(first.stderr, /the shared image cache \S+ is missing on the server/);
      assert.match(first.stderr, PULL_ERROR);
      const [cache] = (await w.emu.snapshot()).composes.filter((c) =>
        c.name === "devpod-image-cache"
      );
      assert.ok(cache, "the first create made the cache");
      const failure = parseCacheMarker(cache.description)?.failure;
      assert.ok(failure, `recorded in its description: ${cache.description}`);
      assert.match(failure.reason, PULL_ERROR);
      assert.equal(failure.attempts, 1);
      assert.equal(deploysOf(w, cache.composeId), 1);

      // Nine more: six one after another, three in parallel. None deploys the cache, none
      // makes a call a create without the cache would not make.
      const counted = await runCounted(w, "create", "icf-2");
      await assertSkipped(w, "icf-2", counted.result);
      const off = await runCounted(w, "create", "icf-off", { env: { IMAGE_CACHE: "false" } });
      mustPass("create with IMAGE_CACHE=false", off.result);
      assert.deepEqual(counted.calls, off.calls, "the same calls as with IMAGE_CACHE=false");
      for (const id of ["icf-3", "icf-4", "icf-5", "icf-6", "icf-7"]) {
        await assertSkipped(w, id, await w.run("create", id));
      }
      const parallel = ["icf-8", "icf-9", "icf-10"];
      const runs = await Promise.all(parallel.map((id) => w.run("create", id)));
      for (const [i, id] of parallel.entries()) await assertSkipped(w, id, runs[i]);
      assert.equal(deploysOf(w, cache.composeId), 1, "ten creates, one cache deploy");
      for (let i = 1; i <= 10; i++) {
        assert.equal((await w.run("status", `icf-${i}`)).stdoutText, "Running\n", `icf-${i}`);
      }

      // list, doctor and cleanup say why and what to do.
      const listed = JSON.parse((await runProvider(["list", "--json"], human)).stdoutText);
      assert.equal(listed.imageCaches[0].failure.reason, failure.reason);
      assert.equal(listed.imageCaches[0].failure.retryAt, failure.retryAt);
      const doctor = await runProvider(["doctor"], human);
      assert.equal(doctor.code, 1);
      assert.match(
        doctor.stdoutText,
        /✘ image cache\s+server local: \S+ failed to deploy \(once\): .*pull access denied.*; the first create after .* retries it; .*doctor --fix/,
      );
      const dry = await runProvider(["cleanup"], human);
      assert.match(
        dry.stdoutText,
        new RegExp(
          `^failed image cache ${cache.appName} \\(server local, Error: .*pull access denied`,
          "m",
        ),
      );

      // The back-off is over (the record rewritten to end now, after every machine so far):
      // of three parallel creates, exactly one retries, after its own machine's deploy.
      const past = new Date(Date.now() - 30 * 60_000).toISOString();
      await api.updateCompose(cache.composeId, {
        description: describeCache(null, "test", failureAt(1, past, failure.reason)),
      });
      const after = ["icf-11", "icf-12", "icf-13"];
      const retried = await Promise.all(after.map((id) => w.run("create", id)));
      for (const [i, id] of after.entries()) await assertSkipped(w, id, retried[i]);
      assert.equal(deploysOf(w, cache.composeId), 2, "one retry among parallel creates");
      assert.equal(
        retried.filter((r) => /This create retries it/.test(r.stderr)).length,
        1,
        retried.map((r) => r.stderr).join("\n---\n"),
      );
      await w.emu.waitIdle(30_000);
      const again = parseCacheMarker((await api.composeOne(cache.composeId))?.description)?.failure;
      assert.equal(again?.attempts, 2, "the failed retry doubles the back-off");
      assert.ok(Date.parse(again!.retryAt) > Date.now() + 50 * 60_000, again?.retryAt);

      // `doctor --fix` retries now; with the image still wrong it fails again and says why,
      // and the back-off starts over.
      const refused = await runProvider(["doctor", "--fix"], human);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stdoutText,
        /✘ image cache \(--fix\)\s+server local: \S+ failed to deploy again: .*pull access denied/,
      );
      const reset = parseCacheMarker((await api.composeOne(cache.composeId))?.description)?.failure;
      assert.equal(reset?.attempts, 1);
      assert.equal(deploysOf(w, cache.composeId), 3);

      // The option fixed, `doctor --fix` retries now: the record goes, the next machine uses it.
      const fixedEnv = { ...human, IMAGE_CACHE_IMAGE: "registry:2.8.3" };
      const fixed = await runProvider(["doctor", "--fix"], fixedEnv);
      assert.match(fixed.stdoutText, /✔ image cache \(--fix\)\s+server local: \S+ deployed again/);
      const row = await api.composeOne(cache.composeId);
      assert.equal(parseCacheMarker(row?.description)?.failure, null);
      assert.equal(row?.composeStatus, "done");
      const next = await w.run("create", "icf-14", {
        env: { IMAGE_CACHE_IMAGE: "registry:2.8.3" },
      });
      mustPass("create after the fix", next);
      assert.deepEqual(warningsIn(next.stderr), []);
      assert.equal((await stateOf(w, "icf-14")).imageCache, cache.appName);
    } finally {
      await w.close();
    }
  },
});
