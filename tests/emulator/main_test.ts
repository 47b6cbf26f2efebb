/** The CLI: prints its address as one JSON line and shuts down cleanly on SIGTERM. */
import assert from "node:assert/strict";

Deno.test(
  "main.ts: JSON line on stdout, serves, exits 0 on SIGTERM",
  { sanitizeResources: false, sanitizeOps: false },
  async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./main.ts", import.meta.url).pathname,
        "--token",
        "cli-token",
        "--version",
        "v0.25.0",
        "--deploy-delay-ms",
        "10",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      reader.releaseLock();
      const info = JSON.parse(text.split("\n")[0]);
      assert.equal(info.token, "cli-token");
      assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${info.url}/api/settings.getDokployVersion`, {
        headers: { "x-api-key": "cli-token" },
      });
      assert.equal(await res.json(), "v0.25.0");
      child.kill("SIGTERM");
      const status = await child.status;
      assert.equal(status.code, 0);
      const dirGone = await Deno.stat(info.dataDir).then(() => false, () => true);
      assert.ok(dirGone, "own temp data dir removed on close");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.stdout.cancel().catch(() => {});
    }
  },
);
