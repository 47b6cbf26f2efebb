/**
 * Devsy (devsy-org/devsy v1.x), the line after skevetter/devpod, as it runs a machine
 * provider — read from its source (it needs Go 1.26, so it is not built here; see
 * devpod-protocol.md, "Devsy"), played against `deno run mod.ts` and a real sshd:
 * - every command gets `DEVSY`, `DEVSY_OS`, `DEVSY_ARCH`, `DEVSY_LOG_LEVEL` and, with
 *   --debug, `DEVSY_DEBUG=true` (pkg/provider/env.go, workspace_client.go RunCommand):
 *   no `DEVPOD_*` at all;
 * - it polls `status` after `create`/`start` and logs status's stderr (machine_client.go);
 * - its inject script (pkg/inject/inject.sh) does ping/pong, streams the agent, exports
 *   `DEVSY_AGENT_URL` and runs `'<agent>' internal ssh-server --stdio` in the tunnel.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { readState } from "../../lib/machine/state.ts";
import { runProvider, startWorld, type World } from "./harness.ts";
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
const DEBUG_LINE = /\[dokploy:debug\] /;

const AGENT_VERSION = "v1.1.0-test";
/** Devsy's agent, reduced: its version, or `internal ssh-server --stdio` serving lines. */
const AGENT_SCRIPT = `#!/bin/sh
case "$1 $2 $3" in
  "version  ") echo ${AGENT_VERSION} ;;
  "internal ssh-server --stdio") echo "ready $DEVSY_AGENT_URL"; while IFS= read -r l; do echo "echo:$l"; done ;;
  "internal agent workspace") echo "$4 in-container=$DEVSY_AGENT_IN_CONTAINER info=$6" ;;
  *) echo "unknown command: $*" >&2; exit 2 ;;
esac
`;
const AGENT_URL = "https://github.com/devsy-org/devsy/releases/download/v1.1.0-test";

/** Devsy's final command: the agent by its absolute path, single-quoted (agent.go). */
const serve = (agent: string) =>
  `export DEVSY_AGENT_URL="${AGENT_URL}"\n'${agent}' internal ssh-server --stdio`;

/** Devsy's inject.sh reduced to its protocol: handshake, exists check, stream, run. */
const inject = (agent: string) =>
  `set -e
echo ping
IFS= read -r DEVSY_PING || exit 1
[ "$DEVSY_PING" = pong ] || exit 1
if [ ! -x '${agent}' ] || [ "$('${agent}' version)" != "${AGENT_VERSION}" ]; then
  mkdir -p "$(dirname '${agent}')"
  echo ARM-false
  cat > '${agent}'.$$
  chmod +x '${agent}'.$$
  mv '${agent}'.$$ '${agent}'
fi
echo done
${serve(agent)}
`;

/** The agent answers its own lines, then stdin EOF ends the tunnel with 0. */
async function useServedAgent(t: Tunnel, tag: string) {
  assert.equal(await t.line(), `ready ${AGENT_URL}`);
  await t.send(`${tag}\n`);
  assert.equal(await t.line(), `echo:${tag}`);
  await t.closeStdin();
  const end = await t.exit();
  assert.equal(end.code, 0, end.stderr);
  return end;
}

async function machineEnvironment(w: World, id: string): Promise<Record<string, string>> {
  const { composeId } = (await readState(w.folder(id)))!;
  const snap = await w.emu.snapshot();
  return YAML.parse(snap.composeFiles[composeId]).services.machine.environment;
}

Deno.test({
  ...e2e,
  name: "devsy: DEVSY_* only — init, create, status polls, injection, stop, start, delete",
  async fn() {
    const w = await startWorld({ cli: "devsy" });
    const id = "devsy-life-1a2b";
    try {
      const env = w.env(id);
      assert.deepEqual(Object.keys(env).filter((k) => k.startsWith("DEVPOD")), []);
      assert.equal(env.DEVSY, "/usr/local/bin/devsy");

      // init (`provider add`/`set-options`) under --debug: traces on stdout, stderr empty.
      const init = await runProvider(["init"], w.env(id, { DEVSY_DEBUG: "true" }));
      assert.equal(init.code, 0, init.stderr);
      assert.equal(init.stderr, "");
      assert.match(init.stdoutText, DEBUG_LINE);
      const quiet = await runProvider(["init"], env);
      assert.doesNotMatch(quiet.stdoutText, DEBUG_LINE, "no debug without DEVSY_DEBUG");

      assert.equal(await polledStatus(w, id), "NotFound");
      const create = await w.run("create", id, { env: { DEVSY_DEBUG: "true" } });
      assert.equal(create.code, 0, create.stderr);
      assert.match(create.stderr, DEBUG_LINE, "DEVSY_DEBUG=true is --debug");
      assertNoTrace(create.stderr);
      await waitsForRunning(w, id, "create");

      // Where the agent goes: an absolute path on the machine, as agent.path resolves.
      const home = await w.run("command", id, { command: 'printf %s "$HOME"' });
      assert.equal(home.code, 0, home.stderr);
      const agent = `${home.stdoutText}/.devsy-test/devsy`;
      const INJECT = inject(agent);

      // Injection, then the next one finds the agent; --debug keeps stdout a clean pipe.
      const first = await tunnel(w, id, INJECT, { DEVSY_DEBUG: "true" });
      assert.equal(await handshake(first), "ARM-false");
      await first.send(encoder.encode(AGENT_SCRIPT));
      await first.closeStdin();
      assert.equal(await first.line(), "done");
      assert.equal(await first.line(), `ready ${AGENT_URL}`, "the agent ran at stdin's end");
      assertNoTrace((await first.exit()).stderr);
      const again = await tunnel(w, id, INJECT, { DEVSY_DEBUG: "true" });
      assert.equal(await handshake(again), "done", "the agent streamed before is found");
      await useServedAgent(again, "devsy-1");
      // Devsy's later tunnels run the agent directly (cmd/machine/ssh.go).
      await useServedAgent(await tunnel(w, id, serve(agent)), "devsy-2");
      // Its workspace calls: an env prefix, the path in Go's %q quotes (workspace_client.go).
      const info = "H4sIAAAAAAAA/6pWKkktLlGyUlAqS8wpTVWqBQQAAP//";
      const status = await w.run("command", id, {
        command:
          `DEVSY_AGENT_IN_CONTAINER=1 "${agent}" internal agent workspace status --workspace-info "${info}"`,
        env: { DEVSY_DEBUG: "true" },
      });
      assert.equal(status.code, 0, status.stderr);
      assert.equal(status.stdoutText, `status in-container=1 info=${info}\n`);

      const describe = await w.run("describe", id);
      assert.equal(describe.code, 0, describe.stderr);
      assert.match(describe.stdoutText, new RegExp(id));

      assert.equal((await w.run("stop", id)).code, 0);
      assert.equal(await polledStatus(w, id), "Stopped");
      const start = await w.run("start", id);
      assert.equal(start.code, 0, start.stderr);
      assert.doesNotMatch(start.stderr, DEBUG_LINE, "no debug without DEVSY_DEBUG");
      await waitsForRunning(w, id, "start");
      // The agent is still there after a restart: no new injection.
      const after = await tunnel(w, id, INJECT);
      assert.equal(await handshake(after), "done");
      await useServedAgent(after, "devsy-3");

      const deleted = await w.run("delete", id);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(await polledStatus(w, id), "NotFound", "gone for Devsy's next status poll");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...e2e,
  name: "devsy: DEVSY_DISABLE_TELEMETRY reaches the machine; hints name `devsy`",
  async fn() {
    const w = await startWorld({ cli: "devsy" });
    try {
      const cases: [string, Record<string, string>, string | undefined][] = [
        ["devsy-tel-off", { DEVSY_DISABLE_TELEMETRY: "true" }, "true"],
        ["devsy-tel-on", {}, undefined],
      ];
      for (const [id, env, expected] of cases) {
        const r = await w.run("create", id, { env });
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await machineEnvironment(w, id)).DEVPOD_DISABLE_TELEMETRY, expected, id);
      }

      // A machine whose folder lost its state: the hint says what to run, in Devsy's words.
      const lost = await w.run("command", "devsy-lost", { command: "true" });
      assert.notEqual(lost.code, 0);
      assert.match(lost.stderr, /\(run 'devsy up' again\)\n$/);

      const bad = await w.run("create", "devsy-bad", { env: { MACHINE_TYPE: "huge" } });
      assert.equal(bad.code, 2);
      assert.match(
        bad.stderr,
        /^devpod-provider-dokploy: MACHINE_TYPE .*; set it with: devsy provider set-options <provider> -o MACHINE_TYPE=\.\.\.\n$/,
      );
    } finally {
      await w.close();
    }
  },
});
