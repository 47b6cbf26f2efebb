/**
 * The emulator with the real machine bootstrap (machine/bootstrap.sh) in supervise
 * mode: ssh works, the idle watchdog stops the machine for good, stop is graceful.
 */
import assert from "node:assert/strict";
import { composeEntrypoint } from "../../machine/bootstrap.ts";
import { startEmulator } from "./mod.ts";
import { listening, machineCompose, machineFixture, ok, ssh, waitFor } from "./test_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false, ignore: Deno.uid() !== 0 };

Deno.test("real bootstrap: ssh, idle auto-stop stays stopped, graceful stop", opts, async () => {
  const emu = await startEmulator({ deployDelayMs: 0 });
  const keysDir = await Deno.makeTempDir();
  try {
    const { host, client, port, knownHosts, environmentId } = await machineFixture(
      emu,
      keysDir,
      "p",
    );
    const m = await ok<{ composeId: string; appName: string }>(emu, "POST", "compose.create", {
      name: "m",
      environmentId,
      composeFile: machineCompose({
        port,
        authorizedKey: client.publicKey,
        script: composeEntrypoint()[2],
        inactivityTimeout: 2,
      }),
    });
    await ok(emu, "POST", "compose.update", {
      composeId: m.composeId,
      env: `DEVPOD_HOST_KEY_B64=${host.privateB64}`,
    });
    await ok(emu, "POST", "compose.deploy", { composeId: m.composeId });
    await emu.waitIdle();
    assert.equal((await emu.snapshot()).composes[0].composeStatus, "done");
    await waitFor("sshd", () => listening(port));
    const hi = await ssh(port, client.privatePath, knownHosts, "echo hi");
    assert.equal(hi.stdout, "hi\n", hi.stderr);

    // No SSH session for 2 s: the watchdog stops the machine, exit 0, no restart.
    await waitFor(
      "idle stop",
      async () => (await emu.snapshot()).composes[0].container.state === "exited",
      10_000,
    );
    await new Promise((r) => setTimeout(r, 1300));
    const idle = (await emu.snapshot()).composes[0];
    assert.deepEqual(idle.container, { state: "exited", exitCode: 0 });
    assert.equal(idle.composeStatus, "done");
    const log = await Deno.readTextFile(`${emu.dataDir}/machines/${m.appName}/container.log`);
    assert.match(log, /supervise mode/);
    assert.match(log, /without an SSH session/);

    assert.equal(await ok(emu, "POST", "compose.start", { composeId: m.composeId }), true);
    await waitFor("sshd again", () => listening(port));
    const t = performance.now();
    assert.equal(await ok(emu, "POST", "compose.stop", { composeId: m.composeId }), true);
    assert.ok(performance.now() - t < 5000, "bootstrap handles SIGTERM (no 10 s kill)");
    assert.deepEqual((await emu.snapshot()).composes[0].container, {
      state: "exited",
      exitCode: 0,
    });
  } finally {
    await emu.close();
    await Deno.remove(keysDir, { recursive: true });
  }
});
