/** Riding out a Dokploy restart: the retry window, what is never retried, one notice. */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import { DokployClient } from "../../lib/dokploy/client.ts";
import { DokployError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";

const TOKEN = "tok-SECRET-0123456789";
const URL_ = "http://dokploy.test";

/** A client on a fake clock: every sleep advances it, so a 60 s window runs instantly. */
function outageClient(
  answer: (n: number) => Response | Error,
  extra: { retryWindowMs?: number; attempts?: number } = {},
) {
  let clock = 0;
  let calls = 0;
  const lines: string[] = [];
  const log: Logger = {
    debugEnabled: false,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
    debug() {},
  };
  const client = new DokployClient({
    baseUrl: URL_,
    token: TOKEN,
    log,
    now: () => clock,
    sleep: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    fetch: () => {
      const a = answer(++calls);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
    ...extra,
  });
  return { client, lines, calls: () => calls, clock: () => clock };
}

const refused = () => new TypeError("error sending request: Connection refused (os error 111)");

Deno.test("outage: refused, reset and 502/503/504 are ridden out, said once", async () => {
  const script = [refused(), new Response("", { status: 502 }), new Response("", { status: 503 })];
  const { client, lines, calls } = outageClient((n) =>
    script[n - 1] ?? new Response("", { status: n === 4 ? 504 : 200 })
  );
  await client.query("project.all");
  await client.mutate("compose.start", { composeId: "c" }, { idempotent: true });
  assert.equal(calls(), 6);
  const notices = lines.filter((l) => l.includes("unavailable"));
  assert.deepEqual(notices, [
    `warning: Dokploy at ${URL_} is unavailable (error sending request: Connection refused (os error 111)); retrying for up to 60s`,
  ]);
  assert.ok(!lines.join("\n").includes(TOKEN));
});

Deno.test("outage: past the window the error says how long and which option waits longer", async () => {
  const { client, clock } = outageClient(() => refused());
  await assert.rejects(client.query("compose.one", { composeId: "c" }), (err: DokployError) => {
    assert.equal(err.status, undefined);
    assert.match(err.message, /cannot reach Dokploy at http:\/\/dokploy\.test .*after 60s/);
    assert.match(err.message, /raise DOKPLOY_RETRY_WINDOW/);
    assert.ok(!err.message.includes("\n") && !err.message.includes(TOKEN));
    return true;
  });
  assert.equal(clock(), 60_000, "backoff stops exactly at the window");
});

Deno.test("outage: the window comes from DOKPLOY_RETRY_WINDOW; 0 fails at once", async () => {
  const base = { DOKPLOY_SERVER_URL: URL_, DOKPLOY_API_TOKEN: "tok-1234" };
  assert.equal(loadConfig(base).retryWindowMs, 60_000);
  assert.equal(loadConfig({ ...base, DOKPLOY_RETRY_WINDOW: "2m" }).retryWindowMs, 120_000);
  assert.throws(
    () => loadConfig({ ...base, DOKPLOY_RETRY_WINDOW: "soon" }),
    /^ConfigError: DOKPLOY_RETRY_WINDOW "soon" is not a duration/,
  );
  const off = outageClient(() => refused(), { retryWindowMs: 0 });
  await assert.rejects(off.client.query("project.all"), /cannot reach Dokploy/);
  assert.equal(off.calls(), 1);
  const short = outageClient(() => new Response("", { status: 503 }), { retryWindowMs: 5_000 });
  await assert.rejects(short.client.query("project.all"), /503.*after 5s/);
});

Deno.test("outage: 400/401/403/404 and non-idempotent mutations are never retried", async () => {
  for (const status of [400, 401, 403, 404]) {
    const { client, calls } = outageClient(() => Response.json({ message: "no" }, { status }));
    await assert.rejects(client.query("compose.one", { composeId: "c" }), DokployError);
    assert.equal(calls(), 1, `${status} is final`);
  }
  for (const answer of [refused, () => new Response("", { status: 502 })]) {
    const { client, calls, lines } = outageClient(answer);
    await assert.rejects(client.mutate("compose.create", {}), DokployError);
    assert.equal(calls(), 1, "a create is never repeated blindly");
    assert.deepEqual(lines, []);
  }
});

Deno.test("outage: a 500 gets a few quick tries, not the whole window", async () => {
  const { client, calls, clock } = outageClient(() => new Response("boom", { status: 500 }));
  await assert.rejects(client.query("project.all"), /500/);
  assert.equal(calls(), 4);
  assert.ok(clock() < 4_000);
});

Deno.test("a mutation not safe to repeat gets its own connection (no silent resend)", async () => {
  const clients: unknown[] = [];
  const client = new DokployClient({
    baseUrl: URL_,
    token: TOKEN,
    fetch: (_url, init) => {
      clients.push((init as { client?: unknown }).client);
      return Promise.resolve(Response.json({}));
    },
  });
  await client.mutate("compose.create", {});
  await client.mutate("compose.stop", {}, { idempotent: true });
  await client.query("project.all");
  assert.ok(clients[0] !== undefined, "compose.create: a fresh connection");
  assert.deepEqual(clients.slice(1), [undefined, undefined], "pooled");
});
