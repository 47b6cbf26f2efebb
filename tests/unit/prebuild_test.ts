import assert from "node:assert/strict";
import YAML from "yaml";
import { ensureImageCache, settleImageCache } from "../../lib/cache/ensure.ts";
import {
  cacheFileFor,
  describeCache,
  parseCacheMarker,
  renderCacheComposeFile,
} from "../../lib/cache/spec.ts";
import { failureAt } from "../../lib/cache/failure.ts";
import { renderComposeFile } from "../../lib/machine/compose.ts";
import { deployedSpec } from "../../lib/machine/inventory.ts";
import {
  cacheOfPrebuildAddress,
  lastPrebuildSize,
  prebuildAddress,
} from "../../lib/prebuild/spec.ts";
import { cacheDeps, cacheRow, scriptedDokploy } from "./cache_dokploy.ts";

const BASE = {
  image: "registry:2.8.3",
  upstream: "https://registry-1.docker.io",
  providerVersion: "v9",
  agents: { image: "nginx:1.27-alpine", upstream: "https://github.com" },
};
const WITH = renderCacheComposeFile({
  ...BASE,
  prebuilds: { storeImage: "registry:2.8.3", frontImage: "nginx:1.27-alpine" },
});
const MINE = { composeId: "mine-m", createdAt: "2026-12-01T10:00:06Z" };

Deno.test("prebuild compose: a store behind an unprivileged front, beside the cache", () => {
  const doc = YAML.parse(WITH);
  assert.deepEqual(Object.keys(doc.services), [
    "registry",
    "prebuild-store",
    "prebuild-front",
    "agent-cache",
  ]);
  const store = doc.services["prebuild-store"];
  const front = doc.services["prebuild-front"];
  for (const s of [store, front]) assert.equal(s.ports, undefined, "never published");
  assert.equal(store.environment.REGISTRY_PROXY_REMOTEURL, undefined, "push-accepting");
  assert.deepEqual(store.volumes, ["prebuilds:/var/lib/registry"]);
  assert.deepEqual(store.networks, ["prebuilds"], "only on the internal network");
  assert.deepEqual(doc.networks.prebuilds, { internal: true });
  assert.deepEqual(front.networks, {
    cache: { aliases: ["${APP_NAME}-prebuilds"] },
    prebuilds: {},
  });
  assert.equal(front.user, "65534:65534");
  assert.deepEqual(front.cap_drop, ["ALL"]);
  assert.equal(front.privileged, undefined);
  assert.deepEqual(Object.keys(doc.volumes), ["cache", "prebuilds", "agents"]);
});

Deno.test("prebuild compose: adding it leaves the cache's own service exactly as it was", () => {
  const without = YAML.parse(renderCacheComposeFile(BASE));
  assert.deepEqual(YAML.parse(WITH).services.registry, without.services.registry);
  assert.deepEqual(YAML.parse(WITH).networks.cache, without.networks.cache);
});

Deno.test("prebuild compose: both entrypoints are valid sh once compose undoubles the $", async () => {
  const doc = YAML.parse(WITH);
  for (const name of ["prebuild-store", "prebuild-front"]) {
    const raw: string = doc.services[name].entrypoint[2];
    assert.doesNotMatch(raw.replaceAll("$$", ""), /\$/, `${name}: every $ doubled for compose`);
    const script = raw.replaceAll("$$", "$");
    const out = await new Deno.Command("sh", { args: ["-n", "-c", script] }).output();
    assert.equal(out.code, 0, `${name}: ${new TextDecoder().decode(out.stderr)}`);
  }
  const front = doc.services["prebuild-front"].entrypoint[2].replaceAll("$$", "$");
  assert.match(front, /exec nginx -e stderr -c \/tmp\/devpod-prebuilds-nginx.conf/);
  const store = doc.services["prebuild-store"].entrypoint[2].replaceAll("$$", "$");
  assert.match(store, /garbage-collect --delete-untagged/);
  assert.match(store, /-mtime \+"\$keep"/);
});

Deno.test("cacheFileFor: PREBUILDS decides whether the registry joins the cache", () => {
  const config = {
    imageCacheImage: "registry:2.8.3",
    imageCacheUpstream: "https://registry-1.docker.io",
    prebuildProxyImage: "nginx:1.27-alpine",
    agentCacheUpstream: "https://github.com",
  };
  assert.equal(cacheFileFor({ ...config, prebuilds: true }, "v9"), WITH);
  assert.equal(cacheFileFor({ ...config, prebuilds: false }, "v9"), renderCacheComposeFile(BASE));
});

Deno.test("prebuild marker: a token of its own, beside the marker and any failure record", () => {
  assert.equal(parseCacheMarker(describeCache(null, "v9", null, true))?.prebuilds, true);
  assert.equal(parseCacheMarker(describeCache(null, "v9"))?.prebuilds, false);
  const f = failureAt(1, "2026-12-01T10:00:00Z", "pull access denied for nginx");
  const both = parseCacheMarker(describeCache("srv-1", "v9", f, true));
  assert.equal(both?.prebuilds, true);
  assert.equal(both?.failure?.reason, f.reason);
  // A failure whose reason quotes the token does not make a cache have prebuilds.
  const tricky = failureAt(1, "2026-12-01T10:00:00Z", "saw [devpod-prebuilds] in a log");
  assert.equal(parseCacheMarker(describeCache(null, "v9", tricky))?.prebuilds, false);
  // Older providers' marker regexp still finds the cache.
  assert.match(
    describeCache(null, "v9", null, true),
    /\[devpod-image-cache;server=([A-Za-z0-9._-]+)\]/,
  );
});

Deno.test("prebuild address: from the cache's appName and back; a size line read back", () => {
  const address = prebuildAddress("devpod-image-cache-a1b2c3");
  assert.equal(address, "devpod-image-cache-a1b2c3-prebuilds:5000");
  assert.equal(cacheOfPrebuildAddress(address), "devpod-image-cache-a1b2c3");
  assert.equal(cacheOfPrebuildAddress("elsewhere:5000"), null);
  assert.equal(cacheOfPrebuildAddress(undefined), null);
  assert.equal(lastPrebuildSize("devpod-prebuilds size 8 KiB\ndevpod-prebuilds size 900 KiB"), 900);
});

const MACHINE = {
  machineId: "ws",
  image: "img",
  dockerMode: "dind" as const,
  cpus: 2,
  memoryMiB: 4096,
  sshPort: 32200,
  authorizedKey: "ssh-ed25519 AAAA k",
  inactivityTimeoutSec: 0,
  dokployNetwork: false,
  disableAgentTelemetry: false,
  imageCache: "devpod-image-cache-a1b2c3",
  providerVersion: "v9",
};

Deno.test("machine compose: localhost:5151 forwards to the cache's prebuild registry", () => {
  const file = renderComposeFile({ ...MACHINE, prebuilds: true });
  const env = YAML.parse(file).services.machine.environment;
  assert.equal(env.DEVPOD_PREBUILD_REGISTRY, "devpod-image-cache-a1b2c3-prebuilds:5000");
  assert.equal(env.DEVPOD_PREBUILD_PORT, "5151");
  assert.equal(deployedSpec(file).prebuilds, true);
  // Without it, or without a cache (its network), the machine gets none.
  for (
    const spec of [{ ...MACHINE, prebuilds: false }, {
      ...MACHINE,
      imageCache: null,
      prebuilds: true,
    }]
  ) {
    const other = renderComposeFile(spec);
    assert.equal(
      YAML.parse(other).services.machine.environment.DEVPOD_PREBUILD_REGISTRY,
      undefined,
    );
    assert.equal(deployedSpec(other).prebuilds, false);
  }
});

Deno.test("ensure cache: a new cache is made with the prebuild registry", async () => {
  const f = scriptedDokploy([]);
  const { d } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.equal(plan.prebuilds, true);
  assert.equal(parseCacheMarker(f.row("mine-1").description)?.prebuilds, true);
  const settled = await settleImageCache(d, plan, f.snapshot(), MINE);
  assert.deepEqual([settled.appName, settled.prebuilds], ["devpod-image-cache-zz1", true]);

  const off = scriptedDokploy([]);
  const offPlan = await ensureImageCache(
    cacheDeps(off.api, { PREBUILDS: "false" }).d,
    off.snapshot(),
    "e1",
    null,
  );
  assert.equal(offPlan.prebuilds, false);
  assert.equal(parseCacheMarker(off.row("mine-1").description)?.prebuilds, false);
});

Deno.test("ensure cache: an older cache gets the registry once, deployed ahead of the machine", async () => {
  const old = cacheRow({ description: describeCache(null, "v8") });
  const f = scriptedDokploy([old]);
  const { d, lines } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.equal(plan.appName, old.appName);
  assert.equal(plan.prebuilds, true);
  assert.deepEqual(f.calls, ["compose.update old", "compose.deploy old"]);
  assert.match(f.row("old").composeFile ?? "", /prebuild-front:/);
  assert.equal(parseCacheMarker(f.row("old").description)?.prebuilds, true);
  assert.match(
    lines.join("\n"),
    /adding the prebuild registry and the agent cache to the image cache/,
  );
  const settled = await settleImageCache(d, plan, f.snapshot(), MINE);
  assert.equal(settled.prebuilds, true);

  // Marked now: the next create finds it as it is, at no call.
  const next = scriptedDokploy([{ ...f.row("old"), composeStatus: "done" }]);
  const again = await ensureImageCache(cacheDeps(next.api).d, next.snapshot(), "e1", null);
  assert.equal(again.prebuilds, true);
  assert.deepEqual(next.calls, []);

  // PREBUILDS=false adds only the agent cache, and that machine gets no prebuilds.
  const keep = scriptedDokploy([cacheRow({ description: describeCache(null, "v8") })]);
  const off = await ensureImageCache(
    cacheDeps(keep.api, { PREBUILDS: "false" }).d,
    keep.snapshot(),
    "e1",
    null,
  );
  assert.deepEqual([off.appName, off.prebuilds], [old.appName, false]);
  assert.deepEqual(keep.calls, ["compose.update old", "compose.deploy old"]);
  assert.doesNotMatch(keep.row("old").composeFile ?? "", /prebuild-front:/);
  assert.match(keep.row("old").composeFile ?? "", /agent-cache:/);

  // One with prebuilds but no agent cache keeps its prebuild registry, whatever PREBUILDS says.
  const had = scriptedDokploy([cacheRow({ description: describeCache(null, "v8", null, true) })]);
  await ensureImageCache(cacheDeps(had.api, { PREBUILDS: "false" }).d, had.snapshot(), "e1", null);
  assert.match(had.row("old").composeFile ?? "", /prebuild-front:[\s\S]*agent-cache:/);
  const marker = parseCacheMarker(had.row("old").description);
  assert.deepEqual([marker?.prebuilds, marker?.agents], [true, true]);
});

Deno.test("ensure cache: a failed cache gives neither mirror nor prebuilds", async () => {
  const f = scriptedDokploy([cacheRow({ composeStatus: "error" })]);
  const plan = await ensureImageCache(cacheDeps(f.api).d, f.snapshot(), "e1", null);
  assert.deepEqual([plan.appName, plan.prebuilds], [null, false]);
  assert.deepEqual(f.calls, []);
});
