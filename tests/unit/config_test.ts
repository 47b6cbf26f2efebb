import assert from "node:assert/strict";
import { loadConfig, loadMachineContext, parseGoDuration } from "../../lib/config.ts";
import { ConfigError } from "../../lib/errors.ts";

const base = { DOKPLOY_SERVER_URL: "https://dokploy.example.com", DOKPLOY_API_TOKEN: "tok-123456" };

function rejects(env: Record<string, string>, option: string) {
  assert.throws(() => loadConfig({ ...base, ...env }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.match(err.message, new RegExp(`^${option} `));
    assert.ok(!err.message.includes("\n"), "one line");
    assert.match(err.message, /set-options/);
    return true;
  });
}

Deno.test("defaults fill every option", () => {
  const c = loadConfig(base);
  assert.equal(c.serverUrl, "https://dokploy.example.com");
  assert.equal(c.projectName, "devpod-workspaces");
  assert.deepEqual(c.server, { kind: "local" });
  assert.deepEqual([c.cpus, c.memoryMiB], [2, 4096]);
  assert.equal(c.dockerMode, "dind");
  assert.equal(c.inactivityTimeoutSec, 1800);
  assert.deepEqual(c.sshPortRange, { from: 32200, to: 32999 });
  assert.equal(c.keepVolumes, false);
});

Deno.test("server URL is normalised: trailing slash and /api are dropped", () => {
  assert.equal(
    loadConfig({ ...base, DOKPLOY_SERVER_URL: "https://d.example.com/" }).serverUrl,
    "https://d.example.com",
  );
  assert.equal(
    loadConfig({ ...base, DOKPLOY_SERVER_URL: "http://d.example.com:3000/api/" }).serverUrl,
    "http://d.example.com:3000",
  );
});

Deno.test("presets and overrides size the machine", () => {
  const c = loadConfig({ ...base, MACHINE_TYPE: "large", MACHINE_CPUS: "3", MACHINE_MEMORY: "6g" });
  assert.deepEqual([c.machineType, c.cpus, c.memoryMiB], ["large", 3, 6144]);
  assert.equal(loadConfig({ ...base, MACHINE_TYPE: "medium" }).memoryMiB, 8192);
});

Deno.test("bad values name the option and the fix", () => {
  rejects({ DOKPLOY_SERVER_URL: "dokploy.example.com" }, "DOKPLOY_SERVER_URL");
  rejects({ DOKPLOY_SERVER_URL: "ftp://x" }, "DOKPLOY_SERVER_URL");
  rejects({ DOKPLOY_SERVER_URL: "" }, "DOKPLOY_SERVER_URL");
  rejects({ DOKPLOY_API_TOKEN: "" }, "DOKPLOY_API_TOKEN");
  rejects({ MACHINE_TYPE: "huge" }, "MACHINE_TYPE");
  rejects({ MACHINE_CPUS: "-1" }, "MACHINE_CPUS");
  rejects({ MACHINE_CPUS: "9999" }, "MACHINE_CPUS");
  rejects({ MACHINE_MEMORY: "99999999g" }, "MACHINE_MEMORY");
  rejects({ READY_TIMEOUT: "1s" }, "READY_TIMEOUT");
  rejects({ MACHINE_MEMORY: "12" }, "MACHINE_MEMORY");
  rejects({ SSH_PORT_RANGE: "abc" }, "SSH_PORT_RANGE");
  rejects({ SSH_PORT_RANGE: "3000-2000" }, "SSH_PORT_RANGE");
  rejects({ SSH_PORT_RANGE: "80-90" }, "SSH_PORT_RANGE");
  rejects({ INACTIVITY_TIMEOUT: "-5m" }, "INACTIVITY_TIMEOUT");
  rejects({ INACTIVITY_TIMEOUT: "9999h" }, "INACTIVITY_TIMEOUT");
  rejects({ DOCKER_MODE: "host" }, "DOCKER_MODE");
  rejects({ KEEP_VOLUMES: "maybe" }, "KEEP_VOLUMES");
  rejects({ AGENT_PATH: "relative/path" }, "AGENT_PATH");
  rejects({ MACHINE_IMAGE: "bad image" }, "MACHINE_IMAGE");
});

Deno.test("AGENT_URL: http(s), or file:// with an absolute path for air-gapped machines", () => {
  const agentUrl = (v: string) => loadConfig({ ...base, AGENT_URL: v }).agentUrl;
  assert.equal(agentUrl(""), null);
  assert.equal(agentUrl("https://mirror.example.com/devpod/"), "https://mirror.example.com/devpod");
  assert.equal(agentUrl("http://10.0.0.5:8080/agent"), "http://10.0.0.5:8080/agent");
  assert.equal(agentUrl("file:///opt/devpod-agent"), "file:///opt/devpod-agent");
  assert.equal(agentUrl("file:///opt/devpod-agent/"), "file:///opt/devpod-agent");
  for (
    const bad of [
      "ftp://mirror.example.com/devpod",
      "mirror.example.com/devpod",
      "/opt/devpod-agent",
      "file://opt/devpod-agent", // a host, not a path
      "file://host/opt/devpod-agent",
      "file:opt/devpod-agent",
      "file:///",
      "file:///opt/devpod agent",
      "https://mirror.example.com/a'b",
    ]
  ) rejects({ AGENT_URL: bad }, "AGENT_URL");
});

Deno.test("agent telemetry is off when DevPod runs with it off or AGENT_URL is set", () => {
  const off = (env: Record<string, string>) =>
    loadConfig({ ...base, ...env }).disableAgentTelemetry;
  assert.equal(off({}), false);
  assert.equal(off({ DEVPOD_DISABLE_TELEMETRY: "true" }), true);
  assert.equal(off({ DEVPOD_DISABLE_TELEMETRY: "1" }), false, "DevPod itself accepts only true");
  assert.equal(off({ AGENT_URL: "file:///opt/devpod-agent" }), true);
  assert.equal(off({ AGENT_URL: "https://mirror.example.com/devpod" }), true);
  // Devsy renamed it (devsy pkg/config/env.go).
  assert.equal(off({ DEVSY: "/usr/bin/devsy", DEVSY_DISABLE_TELEMETRY: "true" }), true);
  assert.equal(off({ DEVSY: "/usr/bin/devsy", DEVSY_DISABLE_TELEMETRY: "false" }), false);
});

Deno.test("a malformed token is never echoed", () => {
  try {
    loadConfig({ ...base, DOKPLOY_API_TOKEN: "sec ret-token-value" });
    assert.fail("should throw");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.ok(!err.message.includes("sec ret-token-value"));
  }
});

Deno.test("Go durations", () => {
  assert.equal(parseGoDuration("30m"), 1_800_000);
  assert.equal(parseGoDuration("1h30m"), 5_400_000);
  assert.equal(parseGoDuration("0"), 0);
  assert.equal(parseGoDuration("90s"), 90_000);
  assert.equal(parseGoDuration("10"), null);
  assert.equal(parseGoDuration("m"), null);
});

Deno.test("DevPod machine variables are required with a clear message", () => {
  assert.throws(() => loadMachineContext({ MACHINE_FOLDER: "/tmp/x" }), /MACHINE_ID is not set/);
  assert.throws(() => loadMachineContext({ MACHINE_ID: "m1" }), /MACHINE_FOLDER is not set/);
  assert.throws(
    () => loadMachineContext({ MACHINE_ID: "a b", MACHINE_FOLDER: "/x" }),
    /MACHINE_ID "a b"/,
  );
  assert.deepEqual(loadMachineContext({ MACHINE_ID: "ws-1a2b3", MACHINE_FOLDER: "/x" }), {
    machineId: "ws-1a2b3",
    machineFolder: "/x",
    takeOver: false,
  });
  // A take-over names the one machine it is for.
  const env = { MACHINE_ID: "ws-1", MACHINE_FOLDER: "/x", DOKPLOY_TAKE_OVER: "ws-1" };
  assert.equal(loadMachineContext(env).takeOver, true);
  assert.equal(loadMachineContext({ ...env, DOKPLOY_TAKE_OVER: "ws-2" }).takeOver, false);
});
