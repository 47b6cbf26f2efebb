/**
 * The whole DevPod lifecycle through `deno run mod.ts <verb>` against the emulator
 * and a real sshd: create → status → command (exit codes, binary, EOF, handshake) →
 * stop → start (data kept) → delete (nothing left).
 */
import assert from "node:assert/strict";
import { randomBytes, runProvider, sha256Hex, startWorld, type World } from "./harness.ts";

const ONE_WORD = /^(Running|Busy|Stopped|NotFound)\n$/;

async function status(w: World, id: string): Promise<string> {
  const r = await w.run("status", id);
  assert.equal(r.code, 0, `status failed: ${r.stderr}`);
  assert.match(
    r.stdoutText,
    ONE_WORD,
    `status stdout must be one word, got ${JSON.stringify(r.stdoutText)}`,
  );
  return r.stdoutText.trim();
}

Deno.test({
  name: "e2e: full machine lifecycle through mod.ts with a real sshd",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const w = await startWorld();
    const id = "lifecycle-1a2b3";
    try {
      await t.step("status before create is NotFound", async () => {
        assert.equal(await status(w, id), "NotFound");
      });

      await t.step("create returns only when ssh with the pinned key works", async () => {
        const r = await w.run("create", id);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.length, 0, "create prints nothing on stdout");
        assert.match(r.stderr, /machine ready at devpod@127\.0\.0\.1:\d+/);
        const snap = await w.emu.snapshot();
        assert.equal(snap.composes.length, 1);
        assert.equal(snap.composes[0].container.state, "running");
        assert.equal(await status(w, id), "Running");
        for (const f of ["id_ed25519", "host_ed25519_key", "state.json", "known_hosts"]) {
          const mode = (await Deno.stat(`${w.folder(id)}/${f}`)).mode! & 0o777;
          assert.equal(mode.toString(8), "600", `${f} is private`);
        }
      });

      await t.step("command returns the remote exit code, adds nothing to stdout", async () => {
        const ok = await w.run("command", id, { command: "echo hello; id -un" });
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(ok.stdoutText, "hello\ndevpod\n");
        const bad = await w.run("command", id, { command: "echo out; exit 7" });
        assert.equal(bad.code, 7);
        assert.equal(bad.stdoutText, "out\n");
      });

      await t.step("4 MiB of random bytes come back identical", async () => {
        const data = randomBytes(4 * 1024 * 1024);
        const r = await w.run("command", id, { command: "cat", stdin: data });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.length, data.length);
        assert.equal(await sha256Hex(r.stdout), await sha256Hex(data));
      });

      await t.step("stdin EOF reaches the remote: cat > file ends", async () => {
        const data = new TextEncoder().encode("persist me\n");
        const r = await w.run("command", id, {
          command: "cat > ~/kept.txt && wc -c < ~/kept.txt",
          stdin: data,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdoutText.trim(), String(data.length));
      });

      await t.step("DevPod-style handshake: ping/pong, binary upload, EOF, done", async () => {
        const script = 'echo ping; read -r answer; [ "$answer" = pong ] || exit 3; ' +
          "cat > ~/agent.bin; echo done; sha256sum ~/agent.bin | cut -d' ' -f1";
        const payload = crypto.getRandomValues(new Uint8Array(60_000));
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            "--quiet",
            new URL("../../mod.ts", import.meta.url).pathname,
            "command",
          ],
          env: { ...w.env(id), COMMAND: script },
          clearEnv: true,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const reader = child.stdout.getReader();
        let seen = "";
        const decoder = new TextDecoder();
        while (!seen.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          seen += decoder.decode(value);
        }
        assert.equal(seen, "ping\n", "first stdout line is the remote's ping, nothing of ours");
        const writer = child.stdin.getWriter();
        await writer.write(new TextEncoder().encode("pong\n"));
        await writer.write(payload);
        await writer.close();
        let rest = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          rest += decoder.decode(value);
        }
        const { code } = await child.status;
        await child.stderr.cancel();
        assert.equal(code, 0);
        assert.equal(rest, `done\n${await sha256Hex(payload)}\n`);
      });

      await t.step("stop → Stopped; stop again is safe", async () => {
        const r = await w.run("stop", id);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await status(w, id), "Stopped");
        assert.equal((await w.emu.snapshot()).composes[0].container.state, "exited");
        const again = await w.run("stop", id);
        assert.equal(again.code, 0, again.stderr);
        const refused = await w.run("command", id, { command: "true" });
        assert.notEqual(refused.code, 0, "a stopped machine does not answer");
      });

      await t.step("start → Running with the home volume intact", async () => {
        const r = await w.run("start", id);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await status(w, id), "Running");
        const cat = await w.run("command", id, { command: "cat ~/kept.txt" });
        assert.equal(cat.stdoutText, "persist me\n");
        const again = await w.run("start", id);
        assert.equal(again.code, 0, "start on a running machine is safe");
      });

      await t.step("delete → NotFound and nothing of the machine is left", async () => {
        const r = await w.run("delete", id);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await status(w, id), "NotFound");
        const snap = await w.emu.snapshot();
        assert.equal(snap.composes.length, 0);
        assert.deepEqual(snap.volumeDirs, []);
        assert.equal(snap.machineProcesses, 0);
        const again = await w.run("delete", id);
        assert.equal(again.code, 0, "delete of a gone machine succeeds");
      });
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: command without state and without COMMAND fail with one line",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld();
    try {
      const noState = await w.run("command", "ghost-00000", { command: "true" });
      assert.notEqual(noState.code, 0);
      assert.equal(noState.stdout.length, 0);
      assert.match(noState.stderr, /^devpod-provider-dokploy: no machine state in .*\n$/);
      const noCommand = await runProvider(["command"], w.env("ghost-00000"));
      assert.equal(noCommand.code, 2);
      assert.match(noCommand.stderr, /COMMAND is not set/);
    } finally {
      await w.close();
    }
  },
});
