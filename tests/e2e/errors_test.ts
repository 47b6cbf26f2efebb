/**
 * Bad input and bad servers: each gives one clear line on stderr and a non-zero
 * exit, through the real entry point. `status` never turns an error into NotFound.
 */
import assert from "node:assert/strict";
import { runProvider, startWorld } from "./harness.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

function oneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(stderr, /at .*\.ts:\d+/, "no stack trace");
}

Deno.test({
  ...OPTS,
  name: "e2e: init accepts a good server and rejects a wrong token, URL or option",
  async fn() {
    const w = await startWorld();
    try {
      const ok = await w.run("init", "m");
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdoutText, /connected to Dokploy v0\.30\.2/);

      const badToken = await w.run("init", "m", {
        env: { DOKPLOY_API_TOKEN: "wrong-token-value" },
      });
      assert.notEqual(badToken.code, 0);
      oneLine(badToken.stderr, /401.*DOKPLOY_API_TOKEN/);
      assert.ok(!badToken.stderr.includes("wrong-token-value"));

      const badUrl = await w.run("init", "m", {
        env: { DOKPLOY_SERVER_URL: "http://127.0.0.1:9" },
      });
      assert.notEqual(badUrl.code, 0);
      oneLine(badUrl.stderr, /cannot reach Dokploy at http:\/\/127\.0\.0\.1:9/);

      const noScheme = await w.run("init", "m", {
        env: { DOKPLOY_SERVER_URL: "dokploy.example.com" },
      });
      assert.equal(noScheme.code, 2);
      oneLine(noScheme.stderr, /DOKPLOY_SERVER_URL .* is not a URL/);

      const env = w.env("m");
      delete (env as Record<string, string>).DOKPLOY_API_TOKEN;
      const missing = await runProvider(["init"], env);
      assert.equal(missing.code, 2);
      oneLine(missing.stderr, /DOKPLOY_API_TOKEN is required/);

      const badStatus = await w.run("status", "m", {
        env: { DOKPLOY_API_TOKEN: "wrong-token-value" },
      });
      assert.notEqual(badStatus.code, 0, "auth errors are errors, not NotFound");
      assert.equal(badStatus.stdout.length, 0);

      const unknown = await runProvider(["frobnicate"], env);
      assert.notEqual(unknown.code, 0);
      oneLine(unknown.stderr, /unknown command 'frobnicate'/);
      assert.equal((await w.emu.snapshot()).composes.length, 0, "nothing was created");
    } finally {
      await w.close();
    }
  },
});

for (
  const [version, pattern] of [
    ["v0.24.0", /Dokploy v0\.24\.0 is too old: .* v0\.25\.0 or newer/],
    ["v0.18.4", /Dokploy v0\.18\.4 only accepts the old Bearer tokens .* v0\.25\.0 or newer/],
  ] as const
) {
  Deno.test({
    ...OPTS,
    name: `e2e: Dokploy ${version} is refused with the version it needs`,
    async fn() {
      const w = await startWorld({ version });
      try {
        const r = await w.run("init", "m");
        assert.notEqual(r.code, 0);
        oneLine(r.stderr, pattern);
      } finally {
        await w.close();
      }
    },
  });
}
