/**
 * Air-gapped machines, through the real entry point: AGENT_URL may point at a copy of
 * the agent on the machine (file://), and a set AGENT_URL — like a DevPod running with
 * DEVPOD_DISABLE_TELEMETRY=true — puts DEVPOD_DISABLE_TELEMETRY=true in the machine's
 * compose environment, which the bootstrap hands to every SSH session (sshd SetEnv,
 * tested in tests/machine/bootstrap_test.ts).
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { readState } from "../../lib/machine/state.ts";
import { startWorld, type World } from "./harness.ts";

/** The machine's environment in the compose file Dokploy holds. */
async function composeEnvironment(w: World, id: string): Promise<Record<string, string>> {
  const { composeId } = (await readState(w.folder(id)))!;
  const res = await fetch(`${w.emu.url}/api/compose.one?composeId=${composeId}`, {
    headers: { "x-api-key": w.emu.token },
  });
  assert.equal(res.status, 200);
  const { composeFile } = await res.json();
  return YAML.parse(composeFile).services.machine.environment;
}

Deno.test({
  name:
    "e2e: AGENT_URL=file:///… is accepted and, like DEVPOD_DISABLE_TELEMETRY, turns telemetry off",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld();
    const cases: [string, Record<string, string>, string | undefined][] = [
      ["ag-file", { AGENT_URL: "file:///opt/devpod-agent" }, "true"],
      ["ag-https", { AGENT_URL: "https://mirror.example.com/devpod" }, "true"],
      ["ag-devpod", { DEVPOD_DISABLE_TELEMETRY: "true" }, "true"],
      ["ag-default", {}, undefined],
    ];
    try {
      const created = await Promise.all(cases.map(([id, env]) => w.run("create", id, { env })));
      created.forEach((r, i) => assert.equal(r.code, 0, `${cases[i][0]}: ${r.stderr}`));
      for (const [id, , expected] of cases) {
        assert.equal((await composeEnvironment(w, id)).DEVPOD_DISABLE_TELEMETRY, expected, id);
      }

      const ftp = await w.run("create", "ag-ftp", { env: { AGENT_URL: "ftp://mirror/devpod" } });
      assert.equal(ftp.code, 2);
      assert.match(
        ftp.stderr,
        /^devpod-provider-dokploy: AGENT_URL "ftp:\/\/mirror\/devpod" must be .*set-options.*\n$/,
      );
    } finally {
      await w.close();
    }
  },
});
