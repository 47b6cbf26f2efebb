import assert from "node:assert/strict";
import { DokployClient } from "../../lib/dokploy/client.ts";
import { assertSupported, compareVersions } from "../../lib/dokploy/version.ts";
import { type DokployError, UnsupportedVersionError } from "../../lib/errors.ts";

const TOKEN = "tok-SECRET-0123456789";

/** A tiny scripted HTTP server: each test decides the answers. */
async function withServer(
  handler: (req: Request, n: number) => Response | Promise<Response>,
  fn: (url: string, seen: Request[]) => Promise<void>,
) {
  const seen: Request[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    seen.push(req.clone());
    return handler(req, seen.length);
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, seen);
  } finally {
    await server.shutdown();
  }
}

const client = (url: string, extra = {}) =>
  new DokployClient({ baseUrl: url, token: TOKEN, sleep: () => Promise.resolve(), ...extra });

Deno.test("queries are GET with flat params and the x-api-key header", async () => {
  await withServer(() => Response.json([{ ok: 1 }]), async (url, seen) => {
    const r = await client(url).query("compose.one", { composeId: "c1", tail: 5, skip: undefined });
    assert.deepEqual(r, [{ ok: 1 }]);
    const u = new URL(seen[0].url);
    assert.equal(seen[0].method, "GET");
    assert.equal(u.pathname, "/api/compose.one");
    assert.equal(u.search, "?composeId=c1&tail=5");
    assert.equal(seen[0].headers.get("x-api-key"), TOKEN);
    assert.equal(seen[0].headers.get("authorization"), null);
  });
});

Deno.test("mutations are POST JSON; an empty 200 body is fine", async () => {
  await withServer(() => new Response("", { status: 200 }), async (url, seen) => {
    const r = await client(url).mutate("compose.stop", { composeId: "c1" });
    assert.equal(r, undefined);
    assert.equal(seen[0].method, "POST");
    assert.equal(seen[0].headers.get("content-type"), "application/json");
    assert.deepEqual(await seen[0].json(), { composeId: "c1" });
  });
});

Deno.test("400 issues are shown field by field, without the token", async () => {
  const body = {
    message: "Input validation failed",
    issues: [
      { path: ["environmentId"], message: "Required" },
      { path: ["name"], message: `bad ${TOKEN}` },
    ],
  };
  await withServer(() => Response.json(body, { status: 400 }), async (url) => {
    await assert.rejects(client(url).mutate("compose.create", {}), (err: DokployError) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /environmentId: Required; name: bad \*\*\*/);
      assert.ok(!err.message.includes(TOKEN));
      return true;
    });
  });
});

Deno.test("401 and 403 name the option to fix", async () => {
  await withServer(
    (_r, n) =>
      Response.json({ message: n === 1 ? "Unauthorized" : "no" }, { status: n === 1 ? 401 : 403 }),
    async (url) => {
      await assert.rejects(client(url).query("project.all"), /DOKPLOY_API_TOKEN/);
      await assert.rejects(client(url).query("project.all"), /403/);
    },
  );
});

Deno.test("5xx is retried for idempotent calls only", async () => {
  await withServer(
    (_r, n) => n < 3 ? new Response("boom", { status: 502 }) : Response.json("v0.30.2"),
    async (url, seen) => {
      assert.equal(await client(url).query("settings.getDokployVersion"), "v0.30.2");
      assert.equal(seen.length, 3);
    },
  );
  await withServer(() => new Response("boom", { status: 500 }), async (url, seen) => {
    await assert.rejects(client(url).mutate("compose.create", {}), /500/);
    assert.equal(seen.length, 1, "a create is never repeated blindly");
  });
});

Deno.test("a slow server times out with a transport error that names the URL", async () => {
  await withServer(async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return Response.json(1);
  }, async (url) => {
    await assert.rejects(
      client(url, { timeoutMs: 200, attempts: 1 }).query("project.all"),
      (err: DokployError) => {
        assert.equal(err.status, undefined);
        assert.match(
          err.message,
          /cannot reach Dokploy at http:\/\/127\.0\.0\.1:\d+ .*no answer within/,
        );
        return true;
      },
    );
  });
});

Deno.test("unknown procedure means an older server", async () => {
  await withServer(() => Response.json({ message: "Not found" }, { status: 404 }), async (url) => {
    await assert.rejects(client(url).query("compose.search"), /older than this provider supports/);
  });
});

Deno.test("version support", () => {
  assert.ok(compareVersions("v0.30.2", "v0.25.0") > 0);
  assert.equal(compareVersions("v0.25.0", "0.25.0"), 0);
  assertSupported("v0.25.0");
  assertSupported("v1.0.0");
  assert.throws(
    () => assertSupported("v0.24.3"),
    (e: Error) => e instanceof UnsupportedVersionError && /v0\.25\.0 or newer/.test(e.message),
  );
  assert.throws(() => assertSupported("canary"), UnsupportedVersionError);
});
