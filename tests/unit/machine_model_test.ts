import assert from "node:assert/strict";
import { userInfo } from "node:os";
import YAML from "yaml";
import { loadConfig } from "../../lib/config.ts";
import BOOTSTRAP from "../../machine/bootstrap.sh" with { type: "text" };
import { escapeForCompose } from "../../lib/compose/escape.ts";
import { composeModel, renderComposeEnv, renderComposeFile } from "../../lib/machine/compose.ts";
import { appNamePrefix, describeMachine, parseMarker } from "../../lib/machine/naming.ts";
import { chooseSshPort, mustYieldPort } from "../../lib/machine/ports.ts";
import { legacyOwner as owner } from "../../lib/machine/spec.ts";
import { mapStatus } from "../../lib/machine/status.ts";

const spec = {
  machineId: "ws-ab12c",
  image: "debian:bookworm-slim",
  dockerMode: "dind" as const,
  cpus: 2,
  memoryMiB: 4096,
  sshPort: 32222,
  authorizedKey: "ssh-ed25519 AAAAC3Nza devpod",
  inactivityTimeoutSec: 1800,
  dokployNetwork: false,
  disableAgentTelemetry: false,
  imageCache: null,
  providerVersion: "v0.1.0",
};

Deno.test("compose file parses back to the model, per docker mode", () => {
  for (const dockerMode of ["dind", "none"] as const) {
    const doc = YAML.parse(renderComposeFile({ ...spec, dockerMode }));
    const m = doc.services.machine;
    assert.equal(m.image, "debian:bookworm-slim");
    assert.deepEqual(m.ports, ["32222:22"]);
    assert.equal(m.restart, "on-failure");
    assert.equal(m.environment.DEVPOD_HOST_KEY_B64, "${DEVPOD_HOST_KEY_B64}");
    assert.equal(m.environment.DEVPOD_AUTHORIZED_KEY, spec.authorizedKey);
    assert.equal(m.environment.DEVPOD_INACTIVITY_TIMEOUT, "1800");
    assert.equal(m.labels["dev.devpod.machine-id"], "ws-ab12c");
    assert.deepEqual(m.networks, ["machine"]);
    if (dockerMode === "dind") {
      assert.equal(m.privileged, true);
      assert.ok(m.volumes.includes("docker:/var/lib/docker"));
      assert.deepEqual(Object.keys(doc.volumes), ["home", "docker"]);
    } else {
      assert.equal(m.privileged, undefined);
      assert.deepEqual(m.volumes, ["home:/home/devpod"]);
    }
  }
});

Deno.test("each MACHINE_TYPE preset reaches the compose file", () => {
  for (
    const [type, cpus, mem] of [["small", "2", "4096m"], ["medium", "4", "8192m"], [
      "large",
      "8",
      "16384m",
    ]]
  ) {
    const c = loadConfig({
      DOKPLOY_SERVER_URL: "https://d.example",
      DOKPLOY_API_TOKEN: "t-1234",
      MACHINE_TYPE: type,
    });
    const m =
      YAML.parse(renderComposeFile({ ...spec, cpus: c.cpus, memoryMiB: c.memoryMiB })).services
        .machine;
    assert.deepEqual([m.cpus, m.mem_limit], [cpus, mem], type);
  }
});

Deno.test("compose sizes follow the spec and dokploy-network is opt-in", () => {
  const m = composeModel({ ...spec, cpus: 8, memoryMiB: 16384, dokployNetwork: true });
  assert.equal(m.services.machine.cpus, "8");
  assert.equal(m.services.machine.mem_limit, "16384m");
  assert.deepEqual(m.networks, { "dokploy-network": { external: true } });
});

Deno.test("agent telemetry off reaches the machine's environment, and only then", () => {
  const env = (disableAgentTelemetry: boolean) =>
    YAML.parse(renderComposeFile({ ...spec, disableAgentTelemetry })).services.machine
      .environment;
  assert.equal(env(true).DEVPOD_DISABLE_TELEMETRY, "true");
  // Absent rather than "false": machines without it keep their compose file unchanged.
  assert.equal("DEVPOD_DISABLE_TELEMETRY" in env(false), false);
});

Deno.test("an unclaimed machine's owner text falls back to the OS account name", () => {
  const account = userInfo().username;
  assert.match(owner({}), new RegExp(`^${account}@[^@]+$`));
  assert.doesNotMatch(owner({}), /^unknown@/);
  assert.match(owner({ USER: "" }), new RegExp(`^${account}@`));
  assert.match(owner({ USER: "alice" }), /^alice@/);
  assert.match(owner({ USERNAME: "bob" }), /^bob@/, "Windows");
});

Deno.test("the bootstrap is embedded with compose's $ escaped and no secret in the body", () => {
  const m = composeModel(spec).services.machine;
  assert.equal(m.entrypoint[0], "/bin/sh");
  assert.ok(m.entrypoint[2].length > 100, "bootstrap text embedded");
  // compose reads "$$" as one literal "$": undoing that must give the script back.
  assert.equal(m.entrypoint[2].replaceAll("$$", () => "$"), BOOTSTRAP);
  assert.equal(escapeForCompose("a $B $$"), "a $$B $$$$");
  const file = renderComposeFile(spec);
  assert.ok(!file.includes("PRIVATE KEY"));
  const env = renderComposeEnv(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
  );
  assert.match(env, /^DEVPOD_HOST_KEY_B64=[A-Za-z0-9+/=]+\n$/);
});

Deno.test("app names are Docker-safe and short", () => {
  assert.equal(appNamePrefix("My_WS.1"), "devpod-my-ws-1");
  assert.ok(appNamePrefix("x".repeat(80)).length <= 48);
  assert.match(appNamePrefix("--a--"), /^devpod-a$/);
});

Deno.test("markers round-trip and do not match prefixes", () => {
  const d = describeMachine({ machineId: "ws-1", sshPort: 32001 }, {
    providerVersion: "v1",
    owner: "me@host",
  });
  assert.deepEqual(parseMarker(d), { machineId: "ws-1", sshPort: 32001 });
  assert.equal(parseMarker("[devpod-machine-id=ws-10;port=1]")?.machineId, "ws-10");
  assert.equal(parseMarker("hello"), null);
  assert.equal(parseMarker(null), null);
});

Deno.test("port choice skips used ports and fails when the range is full", () => {
  const range = { from: 40000, to: 40002 };
  assert.equal(chooseSshPort(range, new Set([40000, 40001]), () => 0), 40002);
  assert.equal(chooseSshPort(range, new Set([40001]), () => 0.5), 40002);
  assert.throws(() => chooseSshPort(range, new Set([40000, 40001, 40002])), /SSH_PORT_RANGE/);
});

Deno.test("the later claimant of a port yields, exactly one keeps it", () => {
  const a = { composeId: "a", createdAt: "2026-01-01T00:00:01Z", sshPort: 1 };
  const b = { composeId: "b", createdAt: "2026-01-01T00:00:02Z", sshPort: 1 };
  assert.equal(mustYieldPort(a, [a, b]), false);
  assert.equal(mustYieldPort(b, [a, b]), true);
  const c = { ...b, composeId: "0", createdAt: a.createdAt };
  assert.equal(mustYieldPort(a, [a, c]), true, "same time: smaller id wins");
  assert.equal(mustYieldPort(a, [a, { ...b, sshPort: 2 }]), false);
});

Deno.test("status mapping keeps deploy pipeline and container state apart", () => {
  const run = (s: "idle" | "running" | "done" | "error", states: string[]) =>
    mapStatus({ composeStatus: s }, states.map((state) => ({ state, name: "app-machine-1" })));
  assert.deepEqual(mapStatus(null, []), { status: "NotFound" });
  assert.deepEqual(run("running", ["running"]), { status: "Busy" });
  assert.deepEqual(run("done", ["running"]), { status: "Running" });
  assert.deepEqual(run("idle", ["exited"]), { status: "Stopped" });
  assert.deepEqual(run("done", ["exited"]), { status: "Stopped" });
  assert.deepEqual(run("idle", []), { status: "Stopped" });
  assert.deepEqual(run("done", ["created"]), { status: "Busy" });
  // A crash loop: DevPod would poll Busy for ever; Stopped makes it `start`, which reports.
  assert.deepEqual(run("done", ["restarting"]), { status: "Stopped" });
  assert.deepEqual(run("error", []), { deployFailed: true });
  assert.deepEqual(run("error", ["running"]), { status: "Running" });
  // The backup guard runs on while the machine is stopped: only the machine counts.
  const guarded = [
    { name: "app-machine-1", state: "exited" },
    { name: "app-backup-1", state: "running" },
  ];
  assert.deepEqual(mapStatus({ composeStatus: "done" }, guarded), { status: "Stopped" });
  assert.deepEqual(
    mapStatus({ composeStatus: "done" }, [{ name: "app_machine_1", state: "running" }]),
    {
      status: "Running",
    },
  );
});
