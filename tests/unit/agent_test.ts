/**
 * Which agent (lib/agent/line.ts) and how the agent cache is laid out in the server's
 * cache compose and a machine's (lib/agent/spec.ts). The serving and verifying itself
 * runs for real in tests/machine/agent_cache_test.ts and tests/engine/agent_cache_test.ts.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import {
  parseReleasePath,
  parseReleaseUrl,
  releasePath,
  releaseUrl,
  servedPathPattern,
} from "../../lib/agent/line.ts";
import { AGENT_SERVICE, agentCacheAddress, agentCurl, storedAgents } from "../../lib/agent/spec.ts";
import { describeCache, parseCacheMarker, renderCacheComposeFile } from "../../lib/cache/spec.ts";
import { renderComposeFile } from "../../lib/machine/compose.ts";
import { MACHINE_SPEC } from "./support.ts";

Deno.test("agent line: each line's default release URL names line, version and arch", () => {
  // The URLs each CLI writes into its inject script with no AGENT_URL (read from their code).
  assert.deepEqual(
    parseReleaseUrl(
      "https://github.com/loft-sh/devpod/releases/download/v0.6.15/devpod-linux-amd64",
    ),
    { line: "loft-sh", version: "v0.6.15", arch: "amd64" },
  );
  assert.deepEqual(
    parseReleaseUrl(
      "https://github.com/skevetter/devpod/releases/download/v0.26.1//devpod-linux-arm64",
    ),
    { line: "skevetter", version: "v0.26.1", arch: "arm64" },
  );
  assert.deepEqual(
    parseReleaseUrl(
      "https://github.com/devsy-org/devsy/releases/download/v1.1.0/devsy-linux-amd64",
    ),
    { line: "devsy", version: "v1.1.0", arch: "amd64" },
  );
  for (
    const url of [
      // a dev build's floating URL, a mirror, file://, a wrong binary for the line, traversal
      "https://github.com/loft-sh/devpod/releases/latest/download/devpod-linux-amd64",
      "https://mirror.internal/devpod/v0.6.15/devpod-linux-amd64",
      "file:///opt/devpod/devpod-linux-amd64",
      "https://github.com/devsy-org/devsy/releases/download/v1.1.0/devpod-linux-amd64",
      "https://github.com/loft-sh/devpod/releases/download/v0.6.15/devpod-darwin-arm64",
      "https://github.com/loft-sh/devpod/releases/download/../devpod-linux-amd64",
      "https://github.com/evil/devpod/releases/download/v0.6.15/devpod-linux-amd64",
    ]
  ) assert.equal(parseReleaseUrl(url), null, url);
  const r = { line: "devsy", version: "v1.0.2", arch: "arm64" } as const;
  assert.deepEqual(parseReleaseUrl(releaseUrl(r)), r);
  assert.equal(
    releaseUrl(r, "https://mirror.example/gh/"),
    `https://mirror.example/gh${releasePath(r)}`,
  );
});

Deno.test("agent line: the served-path pattern accepts exactly what parseReleasePath does", () => {
  const re = new RegExp(servedPathPattern());
  for (
    const p of [
      "/loft-sh/devpod/releases/download/v0.6.15/devpod-linux-amd64",
      "/loft-sh/devpod/releases/download/v0.7.0-alpha.9/devpod-linux-arm64",
      "/skevetter/devpod/releases/download/v0.26.1/devpod-linux-amd64",
      "/devsy-org/devsy/releases/download/v1.1.0/devsy-linux-arm64",
    ]
  ) {
    assert.ok(re.test(p), p);
    assert.ok(parseReleasePath(p), p);
  }
  for (
    const p of [
      "/loft-sh/devpod/releases/download/v0.6.15/checksums.txt",
      "/loft-sh/devpod/releases/download/latest/devpod-linux-amd64",
      "/loft-sh/devpod/releases/download/v0.6.15/x/devpod-linux-amd64",
      "/devsy-org/devsy/releases/download/v1.1.0/devpod-linux-amd64",
      "/_part/loft-sh/devpod/releases/download/v0.6.15/devpod-linux-amd64",
    ]
  ) {
    assert.ok(!re.test(p), p);
    assert.equal(parseReleasePath(p), null, p);
  }
});

const CACHE = renderCacheComposeFile({
  image: "registry:2.8.3",
  upstream: "https://registry-1.docker.io",
  providerVersion: "v9",
  agents: { image: "nginx:1.27-alpine", upstream: "https://github.com" },
});

Deno.test("agent cache compose: nginx on the cache's network only, never published, no root powers", async () => {
  const doc = YAML.parse(CACHE);
  const svc = doc.services[AGENT_SERVICE];
  assert.equal(svc.image, "nginx:1.27-alpine");
  assert.equal(svc.ports, undefined);
  assert.deepEqual(svc.networks, { cache: { aliases: ["${APP_NAME}-agents"] } });
  assert.deepEqual(svc.volumes, ["agents:/var/lib/devpod-agents"]);
  assert.deepEqual(svc.cap_drop, ["ALL"]);
  assert.deepEqual(svc.cap_add, ["CHOWN", "SETGID", "SETUID"]);
  assert.equal(svc.environment.DEVPOD_AGENT_UPSTREAM, "https://github.com");
  assert.equal(svc.environment.DEVPOD_AGENT_PATHS.replaceAll("$$", "$"), servedPathPattern());
  const raw: string = svc.entrypoint[2];
  assert.doesNotMatch(raw.replaceAll("$$", ""), /\$/, "every $ doubled for compose");
  const out = await new Deno.Command("sh", { args: ["-n", "-c", raw.replaceAll("$$", "$")] })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // The registry itself is as it was without the agent cache.
  const without = YAML.parse(
    renderCacheComposeFile({
      image: "registry:2.8.3",
      upstream: "https://registry-1.docker.io",
      providerVersion: "v9",
    }),
  );
  assert.deepEqual(doc.services.registry, without.services.registry);
});

Deno.test("agent cache marker: a token of its own; older markers read as without", () => {
  assert.equal(parseCacheMarker(describeCache(null, "v9", null, false, true))?.agents, true);
  assert.equal(parseCacheMarker(describeCache(null, "v9", null, true))?.agents, false);
  const both = parseCacheMarker(describeCache("s1", "v9", null, true, true));
  assert.deepEqual([both?.prebuilds, both?.agents], [true, true]);
});

Deno.test("machine compose: a machine with a cache gets the curl wrapper, its address filled in", async () => {
  const env = (imageCache: string | null) =>
    YAML.parse(renderComposeFile({ ...MACHINE_SPEC, imageCache })).services.machine.environment;
  assert.equal(env(null).DEVPOD_AGENT_CURL, undefined);
  const wrapper: string = env("devpod-image-cache-abc123").DEVPOD_AGENT_CURL;
  assert.equal(wrapper, agentCurl("devpod-image-cache-abc123"));
  const script = wrapper.replaceAll("$$", "$");
  assert.ok(
    script.includes(
      `cache=\${DEVPOD_AGENT_CACHE:-${agentCacheAddress("devpod-image-cache-abc123")}}`,
    ),
  );
  assert.ok(script.includes(servedPathPattern()));
  assert.doesNotMatch(script, /@CACHE@|@PATHS@/);
  const out = await new Deno.Command("sh", { args: ["-n", "-c", script] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});

Deno.test("agent cache log: the releases it stored, once each, as list and doctor show them", () => {
  const log = [
    "devpod-agents size 4 KiB",
    "devpod-agents stored /loft-sh/devpod/releases/download/v0.6.15/devpod-linux-amd64 from https://github.com/… sha256=ab size=9",
    "devpod-agents stored /devsy-org/devsy/releases/download/v1.1.0/devsy-linux-arm64 from seed sha256=cd size=9",
    "devpod-agents stored /loft-sh/devpod/releases/download/v0.6.15/devpod-linux-amd64 from https://github.com/… sha256=ab size=9",
  ].join("\n");
  assert.deepEqual(storedAgents(log), ["loft-sh v0.6.15 amd64", "devsy v1.1.0 arm64"]);
});
