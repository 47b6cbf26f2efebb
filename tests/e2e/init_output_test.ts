/**
 * `init` as DevPod runs it (`provider add`, `provider set-options`): DevPod logs init's
 * stderr as errors, so a success must leave stderr empty, even with --debug; failures
 * still come as one line on stderr with a non-zero exit (docs/devpod-protocol-notes.md).
 */
import assert from "node:assert/strict";
import { OPTIONS } from "../../lib/options.ts";
import { cacheEnv, runProvider, startWorld, type World } from "./harness.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

/** init's environment (devpod-protocol.md §3.4): DevPod's own env plus every option. */
function initEnv(w: World, extra: Record<string, string> = {}): Record<string, string> {
  const options = Object.fromEntries(OPTIONS.map((o) => [o.name, o.default ?? ""]));
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? w.root,
    ...cacheEnv(w.root),
    ...options,
    DOKPLOY_SERVER_URL: w.emu.url,
    DOKPLOY_API_TOKEN: w.emu.token,
    ...extra,
  };
}

Deno.test({
  ...OPTS,
  name: "e2e: init succeeds with nothing on stderr, saying so on stdout",
  async fn() {
    const w = await startWorld();
    try {
      const ok = await runProvider(["init"], initEnv(w));
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stderr, "", "DevPod would show any of it as an error");
      assert.match(ok.stdoutText, /^\[dokploy\] connected to Dokploy v0\.30\.2 at http:\/\//);

      const debug = await runProvider(["init"], initEnv(w, { DEVPOD_DEBUG: "true" }));
      assert.equal(debug.code, 0, debug.stderr);
      assert.equal(debug.stderr, "", "--debug traces go to stdout too");
      assert.match(debug.stdoutText, /\[dokploy:debug\] .*settings\.getDokployVersion/);
      assert.ok(!debug.stdoutText.includes(w.emu.token), "the token is never printed");

      const bad = await runProvider(["init"], initEnv(w, { DOKPLOY_API_TOKEN: "wrong-token" }));
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /^devpod-provider-dokploy: .*401.*DOKPLOY_API_TOKEN.*\n$/);
      assert.equal(bad.stderr.trimEnd().split("\n").length, 1, "one line");
    } finally {
      await w.close();
    }
  },
});
