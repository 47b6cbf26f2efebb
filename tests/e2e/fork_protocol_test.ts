/**
 * What the maintained DevPod line (skevetter/devpod v0.26+) does differently with a
 * provider (devpod-protocol.md, "The maintained fork"), played against `deno run mod.ts`
 * and a real sshd:
 * - after `create` and `start` it polls `status` until Running, copying status's stderr
 *   into the user's log each time: a NotFound there would create a second machine, a
 *   Stopped would start it again, and any stderr is noise on every poll;
 * - agent injection: after streaming the agent it closes the first call's stdin and
 *   stdout but leaves that call running (its script goes on to run the final command)
 *   while it runs COMMAND again; any error is retried by running COMMAND again; and
 *   DevPod opens several tunnels at once;
 * - its cancel is SIGINT, then SIGKILL 2 s later.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REFUSAL_FILE } from "../../lib/ssh/host_key_refusal.ts";
import { STATE_FILE } from "../../lib/machine/state.ts";
import { waitFor } from "../emulator/test_support.ts";
import { type RunResult, startWorld, type World } from "./harness.ts";
import { spawnVerb } from "./fault_support.ts";
import {
  assertNoTrace,
  handshake,
  polledStatus,
  type Tunnel,
  tunnel,
  waitsForRunning,
} from "./tunnel_support.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test({
  ...e2e,
  name: "fork: status after create and start is Running, and silent on stderr in every state",
  async fn() {
    // A slow deploy, so that status meets the machine mid-deploy (Busy).
    const w = await startWorld({ deployDelayMs: 4000 });
    const id = "fork-st-1a2b3";
    try {
      assert.equal(await polledStatus(w, id), "NotFound");
      const create = await spawnVerb(w, "create", id);
      const created = create.output();
      let finished = false;
      void created.then(() => finished = true);
      // Polled while create runs: NotFound before the service exists, then Busy.
      const seen = await waitFor(
        "status to see the deploy or create to end",
        async () => {
          const s = await polledStatus(w, id);
          return s === "Busy" ? s : finished && "create ended first";
        },
        120_000,
        0,
      );
      const out = await created;
      assert.equal(out.code, 0, decoder.decode(out.stderr));
      assert.equal(seen, "Busy", "status saw the machine mid-deploy");
      await waitsForRunning(w, id, "create");

      assert.equal((await w.run("stop", id)).code, 0);
      assert.equal(await polledStatus(w, id), "Stopped");
      const start = await w.run("start", id);
      assert.equal(start.code, 0, start.stderr);
      await waitsForRunning(w, id, "start");

      // A host-key refusal that is over: dropped without a word.
      const folder = w.folder(id);
      const state = JSON.parse(await Deno.readTextFile(join(folder, STATE_FILE)));
      await Deno.writeTextFile(
        join(folder, REFUSAL_FILE),
        JSON.stringify({ ...state, seenAt: new Date().toISOString() }),
      );
      assert.equal(await polledStatus(w, id), "Running");
      await assert.rejects(Deno.stat(join(folder, REFUSAL_FILE)), Deno.errors.NotFound);

      // state.json lost: found by its marker, quietly.
      await Deno.remove(join(folder, STATE_FILE));
      assert.equal(await polledStatus(w, id), "Running");

      assert.equal((await w.run("delete", id)).code, 0);
      assert.equal(await polledStatus(w, id), "NotFound");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...e2e,
  name: "fork: with the image cache, status after create is Running and silent",
  async fn() {
    const w = await startWorld({ options: { IMAGE_CACHE: "true" } });
    try {
      const create = await w.run("create", "fork-ic-1");
      assert.equal(create.code, 0, create.stderr);
      await waitsForRunning(w, "fork-ic-1", "create");
    } finally {
      await w.close();
    }
  },
});

const AGENT_VERSION = "v0.26.1-test";
/** The "agent": prints its version, or serves lines until stdin ends (as ssh-server --stdio). */
const AGENT = `#!/bin/sh
case "$1" in
  version) echo ${AGENT_VERSION} ;;
  serve) echo ready; while IFS= read -r line; do echo "echo:$line"; done ;;
esac
`;
const AGENT_PATH = "$HOME/.fork-test/agent";
const FINAL = `"${AGENT_PATH}" serve`;
/** The fork's inject.sh, reduced to its protocol: handshake, exists check, stream, run. */
const INJECT = `set -e
echo ping
IFS= read -r response || exit 1
[ "$response" = pong ] || exit 1
if [ -x "${AGENT_PATH}" ] && [ "$("${AGENT_PATH}" version)" = "${AGENT_VERSION}" ]; then
  echo done
  eval '${FINAL}'
  exit 0
fi
mkdir -p "$HOME/.fork-test"
echo ARM-false
cat > "${AGENT_PATH}.$$"
mv "${AGENT_PATH}.$$" "${AGENT_PATH}"
chmod +x "${AGENT_PATH}"
echo done
eval '${FINAL}'
`;

/** Talks to a served agent: its own lines come back, then stdin EOF ends it with 0. */
async function useServedAgent(t: Tunnel, tag: string) {
  assert.equal(await t.line(), "ready");
  for (const n of [1, 2]) {
    await t.send(`${tag}-${n}\n`);
    assert.equal(await t.line(), `echo:${tag}-${n}`);
  }
  await t.closeStdin();
  const end = await t.exit();
  assert.equal(end.code, 0, end.stderr);
}

Deno.test({
  ...e2e,
  name: "fork: injection, the re-run beside it, retries and duplicated tunnels",
  async fn() {
    const w = await startWorld();
    const id = "fork-inj-1a2b";
    try {
      assert.equal((await w.run("create", id)).code, 0);

      // An error before the handshake (DevPod gave up waiting): retried with COMMAND again.
      const failed = await tunnel(w, id, INJECT);
      assert.equal(await failed.line(), "ping");
      await failed.closeStdin();
      const failedEnd = await failed.exit();
      assert.equal(failedEnd.code, 1, "the script's own exit code");
      assertNoTrace(failedEnd.stderr);

      // Injection: ping/pong, ARM-false, the binary, stdin EOF, done. Then the fork
      // closes that call's stdout and runs COMMAND again while it still runs.
      const inject = await tunnel(w, id, INJECT);
      assert.equal(await handshake(inject), "ARM-false");
      await inject.send(encoder.encode(AGENT));
      await inject.closeStdin();
      assert.equal(await inject.line(), "done");
      await inject.closeStdout();
      // The re-run is the bare final command; the injecting call, its stdio closed, runs
      // it too (its script goes on after "done") and must end by itself meanwhile.
      const [injectEnd] = await Promise.all([
        inject.exit(),
        useServedAgent(await tunnel(w, id, FINAL), "rerun"),
      ]);
      assertNoTrace(injectEnd.stderr);

      // The next injection (a retry, the next `up`) finds the agent and runs the command.
      const again = await tunnel(w, id, INJECT);
      assert.equal(await handshake(again), "done", "the agent streamed before is found");
      await useServedAgent(again, "again");
      // The fork's version check after injecting: the agent, stdin at EOF.
      const version = await w.run("command", id, { command: `"${AGENT_PATH}" version` });
      assert.equal(version.stdoutText, `${AGENT_VERSION}\n`, version.stderr);

      // Duplicated tunnels, all at once: each gets its own lines back, none mixed.
      const tunnels = await Promise.all(Array.from({ length: 4 }, () => tunnel(w, id, INJECT)));
      await Promise.all(tunnels.map(async (t, i) => {
        assert.equal(await handshake(t), "done");
        await useServedAgent(t, `dup${i}`);
      }));
    } finally {
      await w.close();
    }
  },
});

/** How many processes on the machine carry `mark` in their command line. */
async function remoteCount(w: World, id: string, mark: string): Promise<number> {
  const r: RunResult = await w.run("command", id, {
    // A bracket in the pattern, so that this very shell does not match it.
    command: `ps -eo args | grep -c '[${mark[0]}]${mark.slice(1)}' || true`,
    env: { SSH_REUSE_CONNECTIONS: "false" },
  });
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdoutText.trim());
}

for (const reuse of ["true", "false"]) {
  Deno.test({
    ...e2e,
    name: `command (reuse ${reuse}): the reader goes away, or DevPod cancels: prompt end, no trace`,
    async fn() {
      const w = await startWorld();
      const id = `fork-end-${reuse}`;
      const env = { SSH_REUSE_CONNECTIONS: reuse };
      try {
        assert.equal((await w.run("create", id)).code, 0);

        // A remote that keeps writing; our stdout's reader leaves, our stdin stays open.
        const chatty = `MARK${crypto.randomUUID().slice(0, 8)}`;
        const flood = await tunnel(w, id, `echo ${chatty}; while :; do echo ${chatty}; done`, env);
        assert.equal(await flood.line(), chatty);
        await flood.closeStdout();
        const floodEnd = await flood.exit();
        assert.notEqual(floodEnd.code, 0, "the tunnel broke");
        assertNoTrace(floodEnd.stderr);
        await waitFor("the remote writer to end", async () => !await remoteCount(w, id, chatty));

        // The fork's cancel: SIGINT. A remote reading the stdin we keep open must end too.
        const reader = `MARK${crypto.randomUUID().slice(0, 8)}`;
        const held = await tunnel(w, id, `echo ${reader}; cat >/dev/null; : ${reader}`, env);
        assert.equal(await held.line(), reader);
        held.child.kill("SIGINT");
        const heldEnd = await held.exit(10_000);
        assert.notEqual(heldEnd.code, 0);
        assertNoTrace(heldEnd.stderr);
        await waitFor("the remote reader to end", async () => !await remoteCount(w, id, reader));

        // A remote that reads and writes nothing outlives its session (sshd signals no
        // non-TTY command), and a shared master keeps its stdio; we still end at once.
        const deaf = `MARK${crypto.randomUUID().slice(0, 8)}`;
        const idle = await tunnel(
          w,
          id,
          `echo ${deaf}; exec 0</dev/null; sleep 600; : ${deaf}`,
          env,
        );
        assert.equal(await idle.line(), deaf);
        idle.child.kill("SIGINT");
        assertNoTrace((await idle.exit(10_000)).stderr);
        await w.run("command", id, { command: `pkill -f '[${deaf[0]}]${deaf.slice(1)}'; true` });

        // Nothing is left in a bad state: the next tunnel works.
        const next = await w.run("command", id, { command: "echo fine", env });
        assert.equal(next.stdoutText, "fine\n", next.stderr);
      } finally {
        await w.close();
      }
    },
  });
}
