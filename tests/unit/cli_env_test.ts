/** The CLI's variables read from either line: DevPod's DEVPOD_* or Devsy's DEVSY_*. */
import assert from "node:assert/strict";
import {
  cliAgentUrl,
  cliBinary,
  cliDebug,
  cliLine,
  cliTelemetryDisabled,
  cliVar,
  inCliWords,
} from "../../lib/context/cli_env.ts";

/** What each line sets for a provider command (its GetBaseEnvironment). */
const DEVPOD = { DEVPOD: "/usr/local/bin/devpod", DEVPOD_OS: "linux", DEVPOD_ARCH: "amd64" };
const DEVSY = {
  DEVSY: "/usr/local/bin/devsy",
  DEVSY_OS: "darwin",
  DEVSY_ARCH: "arm64",
  DEVSY_LOG_LEVEL: "info",
};

Deno.test("the line is told by the binary path it sets; DevPod when neither", () => {
  assert.equal(cliLine(DEVPOD), "devpod");
  assert.equal(cliLine(DEVSY), "devsy");
  assert.equal(cliLine({}), "devpod", "by hand (doctor, list)");
  assert.equal(cliLine({ DEVSY: "  " }), "devpod", "an empty value is no value");
  assert.equal(cliLine({ DEVSY_DEBUG: "true" }), "devsy", "a Devsy variable by hand");
  // Both (a user's shell exports one, the other line runs us): DEVPOD wins, as before Devsy.
  assert.equal(cliLine({ ...DEVSY, ...DEVPOD }), "devpod");
});

Deno.test("cliVar: the running line's name first, then the other's", () => {
  assert.equal(cliVar(DEVSY, ""), "/usr/local/bin/devsy");
  assert.equal(cliVar(DEVSY, "OS"), "darwin");
  assert.equal(cliVar(DEVPOD, "ARCH"), "amd64");
  assert.equal(cliVar({ ...DEVSY, DEVPOD_AGENT_URL: "https://a" }, "AGENT_URL"), "https://a");
  assert.equal(
    cliVar({ ...DEVSY, DEVPOD_AGENT_URL: "https://a", DEVSY_AGENT_URL: "https://b" }, "AGENT_URL"),
    "https://b",
  );
  assert.equal(cliVar(DEVSY, "MISSING"), undefined);
  assert.deepEqual(cliBinary(DEVSY), { path: "/usr/local/bin/devsy", os: "darwin", arch: "arm64" });
  assert.deepEqual(cliBinary({}), { path: undefined, os: undefined, arch: undefined });
  assert.equal(
    cliAgentUrl({ ...DEVSY, DEVSY_AGENT_URL: "file:///opt/devsy" }),
    "file:///opt/devsy",
  );
});

Deno.test("--debug from either line: <PREFIX>_DEBUG=true or log level debug", () => {
  assert.equal(cliDebug(DEVSY), false);
  assert.equal(cliDebug(DEVPOD), false);
  assert.equal(cliDebug({ ...DEVSY, DEVSY_DEBUG: "true" }), true);
  assert.equal(cliDebug({ ...DEVPOD, DEVPOD_DEBUG: "true" }), true);
  assert.equal(cliDebug({ ...DEVSY, DEVSY_LOG_LEVEL: "debug" }), true);
  assert.equal(cliDebug({ ...DEVSY, DEVSY_DEBUG: "false" }), false);
  assert.equal(cliDebug({ ...DEVPOD, DEVPOD_PROVIDER_DEBUG: "true" }), true);
  assert.equal(cliDebug({ ...DEVSY, DEVSY_PROVIDER_DEBUG: "true" }), true);
});

Deno.test("telemetry off: exactly `true`, under either name", () => {
  assert.equal(cliTelemetryDisabled({ ...DEVSY, DEVSY_DISABLE_TELEMETRY: "true" }), true);
  assert.equal(cliTelemetryDisabled({ ...DEVPOD, DEVPOD_DISABLE_TELEMETRY: "true" }), true);
  assert.equal(cliTelemetryDisabled({ ...DEVSY, DEVSY_DISABLE_TELEMETRY: "1" }), false);
  assert.equal(cliTelemetryDisabled(DEVSY), false);
});

Deno.test("hints in the running CLI's words; our own name stays", () => {
  const msg =
    "machine x does not exist; run 'devpod up' again (devpod provider set-options <p>, devpod machine list, devpod stop); devpod-provider-dokploy doctor";
  assert.equal(inCliWords(msg, "devpod"), msg);
  assert.equal(
    inCliWords(msg, "devsy"),
    "machine x does not exist; run 'devsy up' again (devsy provider set-options <p>, devsy machine list, devsy stop); devpod-provider-dokploy doctor",
  );
  assert.equal(inCliWords("devpod upgrade, devpod-up", "devsy"), "devpod upgrade, devpod-up");
});
