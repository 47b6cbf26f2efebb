/**
 * Packaging: the provider bundled into ONE file and copied outside the repo (the local
 * stand-in for the `deno compile` binary) runs the whole lifecycle. This proves every
 * run-time asset — the machine bootstrap above all — is embedded, not read from the tree.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWorld } from "../e2e/harness.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

Deno.test({
  name: "packaging: a single bundled file outside the repo runs the lifecycle",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const outside = await Deno.makeTempDir({ prefix: "devpod-bundle-" });
    const bundle = join(outside, "devpod-provider-dokploy.js");
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "-o", bundle, join(ROOT, "mod.ts")],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(built.success, new TextDecoder().decode(built.stderr));
    const w = await startWorld({ entry: bundle });
    try {
      const id = "bundle-00001";
      for (const verb of ["init", "create"]) {
        const r = await w.run(verb, id);
        assert.equal(r.code, 0, `${verb}: ${r.stderr}`);
      }
      assert.equal((await w.run("status", id)).stdoutText, "Running\n");
      const cmd = await w.run("command", id, {
        command: "echo from-bundle; test -f ~/.profile || true",
      });
      assert.equal(cmd.stdoutText, "from-bundle\n");
      assert.equal((await w.run("stop", id)).code, 0);
      assert.equal((await w.run("status", id)).stdoutText, "Stopped\n");
      assert.equal((await w.run("start", id)).code, 0);
      assert.equal((await w.run("delete", id)).code, 0);
      assert.equal((await w.run("status", id)).stdoutText, "NotFound\n");
    } finally {
      await w.close();
      await Deno.remove(outside, { recursive: true });
    }
  },
});
