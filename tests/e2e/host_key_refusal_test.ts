/**
 * Another sshd, with another host key, on a machine's port. `command` refuses it, but
 * DevPod hides command's stderr while it injects its agent (the user sees only
 * "Waiting for devpod agent to come up..." for minutes), so `status` must fail with
 * the reason — which never passes on OpenSSH's advice to remove the pinned key.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REFUSAL_FILE } from "../../lib/ssh/host_key_refusal.ts";
import { readState } from "../../lib/machine/state.ts";
import { startWorld } from "./harness.ts";

const REFUSED = /presents a host key that is not this machine's pinned key/;

/** An sshd with a host key of its own on 127.0.0.1:`port`, as a stranger on the port. */
async function startForeignSshd(port: number, dir: string) {
  const key = join(dir, "foreign_host_key");
  const keygen = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", key],
  }).output();
  assert.ok(keygen.success, "ssh-keygen");
  const config = join(dir, "foreign_sshd_config");
  await Deno.writeTextFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${key}`,
      "PidFile none",
      "UsePAM no",
      "AllowUsers nobody",
      "",
    ].join("\n"),
  );
  const sshd = (await new Deno.Command("sh", { args: ["-c", "command -v sshd"], stdout: "piped" })
    .output()).stdout;
  const child = new Deno.Command(new TextDecoder().decode(sshd).trim() || "/usr/sbin/sshd", {
    args: ["-D", "-e", "-f", config],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`the foreign sshd did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

function assertOneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0], pattern);
}

Deno.test({
  name:
    "e2e: a foreign sshd on the machine's port: command refused, status says why, no ssh-keygen -R",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld();
    const id = "hk-0a1b2";
    const folder = w.folder(id);
    let foreign: Awaited<ReturnType<typeof startForeignSshd>> | undefined;
    try {
      assert.equal((await w.run("create", id)).code, 0);
      assert.equal((await w.run("stop", id)).code, 0);
      const { sshHost, sshPort } = (await readState(folder))!;
      foreign = await startForeignSshd(sshPort, w.root);

      const cmd = await w.run("command", id, { command: "echo should-not-run" });
      assert.equal(cmd.code, 255);
      assert.equal(cmd.stdout.length, 0);
      assert.match(cmd.stderr, /Host key verification failed/);
      assert.match(cmd.stderr, REFUSED);
      assert.doesNotMatch(cmd.stderr, /ssh-keygen|remove with/);

      // What DevPod prints on its next status call; it holds while the stranger is there.
      for (let i = 0; i < 2; i++) {
        const status = await w.run("status", id);
        assert.notEqual(status.code, 0);
        assert.equal(status.stdout.length, 0, "nothing on stdout");
        assertOneLine(
          status.stderr,
          new RegExp(
            `^devpod-provider-dokploy: the SSH server on ${sshHost}:${sshPort} .*pinned key`,
          ),
        );
        assert.doesNotMatch(status.stderr, /ssh-keygen|-R /);
      }
      const refusal = await Deno.readTextFile(join(folder, REFUSAL_FILE));

      // The stranger leaves: status stops blaming the key, and DevPod can start the machine.
      await foreign.stop();
      foreign = undefined;
      const stopped = await w.run("status", id);
      assert.equal(stopped.stdoutText, "Stopped\n", stopped.stderr);

      // start re-verifies the pinned key, and a command that gets through ends a refusal.
      await Deno.writeTextFile(join(folder, REFUSAL_FILE), refusal);
      assert.equal((await w.run("start", id)).code, 0);
      await assert.rejects(Deno.stat(join(folder, REFUSAL_FILE)), Deno.errors.NotFound);
      await Deno.writeTextFile(join(folder, REFUSAL_FILE), refusal);
      const ok = await w.run("command", id, { command: "echo through" });
      assert.equal(ok.stdoutText, "through\n", ok.stderr);
      await assert.rejects(Deno.stat(join(folder, REFUSAL_FILE)), Deno.errors.NotFound);
      assert.equal((await w.run("status", id)).stdoutText, "Running\n");
      assert.equal((await w.run("delete", id)).code, 0);
    } finally {
      await foreign?.stop();
      await w.close();
    }
  },
});
