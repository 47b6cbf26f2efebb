/** Checks on the bootstrap script that need no root: syntax per shell, compose escaping. */
import assert from "node:assert/strict";
import { BOOTSTRAP_SCRIPT, composeEntrypoint } from "../../machine/bootstrap.ts";
import { hasTool, run } from "./harness.ts";

const SCRIPT = new URL("../../machine/bootstrap.sh", import.meta.url).pathname;

for (const shell of ["dash", "bash", "busybox"]) {
  Deno.test({
    name: `bootstrap.sh parses under ${shell} (sh -n)`,
    ignore: !(await hasTool(shell)),
    async fn() {
      const args = shell === "busybox" ? ["ash", "-n", SCRIPT] : ["-n", SCRIPT];
      const out = await run(shell, args);
      assert.equal(out.code, 0, out.stderr);
    },
  });
}

Deno.test({
  name: "bootstrap.sh passes shellcheck (POSIX sh)",
  ignore: !(await hasTool("shellcheck")),
  async fn() {
    const out = await run("shellcheck", ["-s", "sh", SCRIPT]);
    assert.equal(out.code, 0, out.stdout);
  },
});

Deno.test("composeEntrypoint runs the script inline with every $ escaped for compose", () => {
  const [sh, flag, body, name] = composeEntrypoint();
  assert.deepEqual([sh, flag, name], ["/bin/sh", "-c", "devpod-bootstrap"]);
  assert.doesNotMatch(body.replaceAll("$$", ""), /\$/);
  assert.equal(body.replaceAll("$$", "$"), BOOTSTRAP_SCRIPT);
});

Deno.test("bootstrap.sh refuses a DEVPOD_DISABLE_TELEMETRY it does not know, before touching anything", async () => {
  const out = await new Deno.Command("sh", {
    args: [SCRIPT],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", DEVPOD_DISABLE_TELEMETRY: "yes" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /^\[devpod-bootstrap\] error: DEVPOD_DISABLE_TELEMETRY must be true, false or empty, got 'yes'\n$/,
  );
});
