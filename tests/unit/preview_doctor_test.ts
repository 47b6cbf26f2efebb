/**
 * doctor's preview lines (issue 26): one per preview, passing only when a request through
 * the forwarder reaches the machine's relay. The probe is the relay script's own (run
 * here against loopback listeners that answer as the forwarder would); the SSH hop is
 * the real engine test's (tests/engine/preview_test.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import RELAY from "../../machine/preview_relay.pl" with { type: "text" };
import type { DokployApi } from "../../lib/dokploy/api.ts";
import type { MachineInfo } from "../../lib/machine/inventory.ts";
import { writeState } from "../../lib/machine/state.ts";
import { checkPreviews } from "../../lib/preview/doctor.ts";
import { probeCommand, readProbe } from "../../lib/preview/path_check.ts";
import type { Check } from "../../lib/servers/doctor.ts";
import { machineInfo } from "./support.ts";

const APP = "devpod-ws-1-abc123";

Deno.test("the probe's outcomes: the path works only when the relay was reached", () => {
  const ports = [3000, 3001, 3002, 3003, 3004, 3005, 3006, 3007];
  const out = readProbe(
    [
      "3000 http 200",
      "3001 devpod devpod preview: nothing answers on port 3001 of the devcontainer (172.17.0.2). The app must listen on 0.0.0.0, not 127.0.0.1.",
      "3002 devpod devpod preview: the machine is not running (devpod up <workspace> starts it) [machine.x_machine: no address]",
      "3003 devpod devpod preview: the machine's relay refused 10.0.0.3: it is not preview.x_machine (devpod stop, then devpod up <workspace>, deploys both again)",
      "3004 unresolved preview.x_machine",
      "3005 closed 10.0.0.3:3005: Connection refused",
      "3006 silent",
    ].join("\n"),
    ports,
  );
  const got = ports.map((p) => [p, out.get(p)!.ok, out.get(p)!.detail]);
  const REDEPLOY = "devpod stop, then devpod up <workspace>";
  assert.deepEqual(got.map(([p, ok]) => [p, ok]), [
    [3000, true],
    [3001, true],
    [3002, false],
    [3003, false],
    [3004, false],
    [3005, false],
    [3006, false],
    [3007, false],
  ]);
  assert.match(String(got[1][2]), /reaches the relay; nothing listens on port 3001/);
  assert.match(
    String(got[2][2]),
    /^the forwarder cannot reach the machine's relay \(machine\.x_machine: no address\); devpod stop/,
  );
  assert.match(String(got[3][2]), /relay refuses its forwarder \(the machine's relay refused/);
  assert.match(String(got[4][2]), /no forwarder on the machine's network \(preview\.x_machine/);
  for (const [, ok, detail] of got) if (!ok) assert.ok(String(detail).includes(REDEPLOY));
});

Deno.test("the probe command: the relay script, quoted for the remote shell", () => {
  const cmd = probeCommand(APP, [3000, 8080]);
  assert.ok(cmd.startsWith("perl -e '"));
  assert.ok(cmd.endsWith(` probe preview.${APP}_machine 3000 8080`));
  // The remote shell gives perl the script byte for byte.
  const r = new Deno.Command("sh", { args: ["-c", cmd.replace(/ probe .*$/, " -c")] })
    .outputSync();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
});

/** One loopback listener answering each connection with `reply` (after the request). */
function answering(reply: string): { port: number; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of l) {
      await conn.read(new Uint8Array(1024)).catch(() => null);
      await conn.write(new TextEncoder().encode(reply)).catch(() => 0);
      conn.close();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

Deno.test("the probe itself, against what a forwarder answers", async () => {
  const body = "devpod preview: the machine is not running (devpod up <workspace> starts it) " +
    "[10.0.0.2:47022: Connection refused]\n";
  const relayGone = answering(
    `HTTP/1.1 502 Bad Gateway\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
  const app = answering("HTTP/1.0 200 OK\r\n\r\n");
  const silent = answering("");
  const unused = answering("");
  unused.close();
  try {
    const out = await new Deno.Command("perl", {
      args: [
        "-e",
        RELAY,
        "probe",
        "127.0.0.1",
        ...[relayGone, app, silent, unused].map((l) => String(l.port)),
      ],
    }).output();
    const lines = new TextDecoder().decode(out.stdout).split("\n");
    assert.equal(
      lines[0],
      `${relayGone.port} devpod ${body.trim()}`,
    );
    assert.equal(lines[1], `${app.port} http 200`);
    assert.equal(lines[2], `${silent.port} silent`);
    assert.match(lines[3], new RegExp(`^${unused.port} closed 127\\.0\\.0\\.1:${unused.port}: `));
    const verdicts = readProbe(lines.join("\n"), [relayGone.port, app.port]);
    assert.equal(verdicts.get(relayGone.port)!.ok, false);
    assert.equal(verdicts.get(app.port)!.ok, true);
  } finally {
    relayGone.close();
    app.close();
    silent.close();
  }
});

function machine(over: Partial<MachineInfo> = {}): MachineInfo {
  return machineInfo("ws-1", {
    composeId: "c-1",
    appName: APP,
    state: "Running",
    containers: 2,
    sshPort: 32222,
    previews: [3000, 8080].map((port) => ({
      machineId: "ws-1",
      port,
      host: `ws-${port}.dev.test`,
      url: `https://ws-${port}.dev.test`,
      auth: "none" as const,
      user: null,
      domainId: `d-${port}`,
      problem: null,
    })),
    ...over,
  });
}

const api = {
  containers: () =>
    Promise.resolve([
      { containerId: "a", name: `${APP}_machine_1`, state: "running", status: "Up" },
      { containerId: "b", name: `${APP}_preview_1`, state: "running", status: "Up" },
    ]),
} as unknown as DokployApi;

async function doctorLines(
  env: Record<string, string>,
  m: MachineInfo,
  probeOutput: string,
): Promise<{ checks: Check[]; probed: string[] }> {
  const checks: Check[] = [];
  const probed: string[] = [];
  await checkPreviews(api, [m], (c) => Promise.resolve(void checks.push(c)), {
    env,
    probe: (target, appName, ports) => {
      probed.push(`${target.host}:${target.port} ${appName} ${ports.join(",")}`);
      return Promise.resolve(readProbe(probeOutput, ports));
    },
  });
  return { checks, probed };
}

Deno.test("doctor: a line per preview, failing when the relay is not reachable", async () => {
  const home = await Deno.makeTempDir();
  try {
    const folder = join(home, "contexts", "default", "machines", "ws-1");
    await Deno.mkdir(folder, { recursive: true });
    await writeState(folder, {
      version: 1,
      machineId: "ws-1",
      composeId: "c-1",
      appName: APP,
      projectId: "p",
      environmentId: "e",
      serverId: null,
      sshHost: "10.1.2.3",
      sshPort: 32222,
      sshUser: "devpod",
      hostPublicKey: "ssh-ed25519 AAAA",
      hostKeyFingerprint: "SHA256:x",
      createdAt: "2026-12-01T00:00:00Z",
    });
    const env = { DEVPOD_HOME: home };

    const good = await doctorLines(env, machine(), "3000 http 200\n8080 http 404\n");
    assert.deepEqual(good.probed, [`10.1.2.3:32222 ${APP} 3000,8080`], "one SSH per machine");
    assert.deepEqual(good.checks.map((c) => [c.ok, c.name]), [
      [true, "preview ws-1:3000"],
      [true, "preview ws-1:8080"],
    ]);
    assert.match(
      good.checks[0].detail,
      /^https:\/\/ws-3000\.dev\.test: the forwarder reaches the relay, the app answers \(HTTP 200\)$/,
    );

    const gone = await doctorLines(
      env,
      machine(),
      "3000 devpod devpod preview: the machine is not running (devpod up <workspace> starts it) [10.0.0.2:47022: Connection refused]\n" +
        "8080 devpod devpod preview: the machine is not running (devpod up <workspace> starts it) [10.0.0.2:47022: Connection refused]\n",
    );
    assert.deepEqual(gone.checks.map((c) => c.ok), [false, false]);
    assert.equal(
      gone.checks[1].detail,
      "https://ws-8080.dev.test: the forwarder cannot reach the machine's relay " +
        "(10.0.0.2:47022: Connection refused); devpod stop, then devpod up <workspace> " +
        "(deploys the machine and its forwarder again)",
    );

    // Made on another computer: nothing to SSH with here, said so, not failed.
    const elsewhere = await doctorLines(env, machine({ composeId: "c-other" }), "");
    assert.deepEqual(elsewhere.probed, []);
    assert.deepEqual(elsewhere.checks.map((c) => c.ok), [true, true]);
    assert.match(elsewhere.checks[0].detail, /path not checked: this computer has no folder/);

    const stopped = await doctorLines(env, machine({ state: "Stopped" }), "");
    assert.deepEqual(stopped.probed, []);
    assert.match(stopped.checks[0].detail, /path not checked: the machine is stopped/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
