import assert from "node:assert/strict";
import YAML from "yaml";
import { ensureImageCache, settleImageCache } from "../../lib/cache/ensure.ts";
import { formatKiB } from "../../lib/cache/inventory.ts";
import {
  cacheOfMirror,
  describeCache,
  lastLoggedSize,
  mirrorUrl,
  parseCacheMarker,
  renderCacheComposeFile,
} from "../../lib/cache/spec.ts";
import { loadConfig } from "../../lib/config.ts";
import { cacheDeps, cacheRow, scriptedDokploy } from "./cache_dokploy.ts";
import { MACHINE_SPEC } from "./support.ts";
import { renderComposeFile } from "../../lib/machine/compose.ts";
import { describeMachine, parseMarker } from "../../lib/machine/naming.ts";

const CACHE_FILE = renderCacheComposeFile({
  image: "registry:2.8.3",
  upstream: "https://registry-1.docker.io",
  providerVersion: "v9",
});

Deno.test("cache compose: a registry on its own named network, nothing published", () => {
  const doc = YAML.parse(CACHE_FILE);
  assert.deepEqual(Object.keys(doc.services), ["registry"]);
  const r = doc.services.registry;
  assert.equal(r.image, "registry:2.8.3");
  assert.equal(r.ports, undefined, "never published");
  assert.equal(r.environment.REGISTRY_PROXY_REMOTEURL, "https://registry-1.docker.io");
  assert.equal(r.environment.REGISTRY_HTTP_ADDR, "0.0.0.0:5000");
  assert.deepEqual(r.volumes, ["cache:/var/lib/registry"]);
  assert.equal(r.restart, "unless-stopped");
  // Named after the service's own appName (from Dokploy's .env): one per project and server.
  assert.deepEqual(doc.networks, { cache: { name: "${APP_NAME}" } });
  assert.deepEqual(r.networks, { cache: { aliases: ["${APP_NAME}"] } });
  assert.equal(r.entrypoint[0], "/bin/sh");
  assert.doesNotMatch(r.entrypoint[2].replaceAll("$$", ""), /\$/, "every $ doubled for compose");
});

Deno.test("cache compose: its entrypoint is valid sh once compose undoubles the $", async () => {
  const script = YAML.parse(CACHE_FILE).services.registry.entrypoint[2].replaceAll("$$", "$");
  const out = await new Deno.Command("sh", { args: ["-n", "-c", script] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(script, /exec "\$registry" serve \/etc\/docker\/registry\/config.yml/);
  assert.match(script, /echo "devpod-image-cache size \$size KiB"/);
});

Deno.test("cache marker: round trip per server, and never taken for a machine's", () => {
  assert.deepEqual(parseCacheMarker(describeCache(null, "v1")), {
    serverId: null,
    failure: null,
    prebuilds: false,
    agents: false,
  });
  assert.deepEqual(parseCacheMarker(describeCache("srv-1a", "v1")), {
    serverId: "srv-1a",
    failure: null,
    prebuilds: false,
    agents: false,
  });
  assert.equal(parseMarker(describeCache(null, "v1")), null);
  const machine = describeMachine({ machineId: "ws", sshPort: 32200 }, {
    providerVersion: "v1",
    owner: "me@host",
  });
  assert.equal(parseCacheMarker(machine), undefined);
  assert.equal(parseCacheMarker(null), undefined);
});

Deno.test("mirror address: from the cache's appName and back; foreign ones are not ours", () => {
  const url = mirrorUrl("devpod-image-cache-a1b2c3");
  assert.equal(url, "http://devpod-image-cache-a1b2c3:5000");
  assert.equal(cacheOfMirror(url), "devpod-image-cache-a1b2c3");
  assert.equal(cacheOfMirror("https://mirror.gcr.io"), null);
  assert.equal(cacheOfMirror("http://x:5001"), null);
  assert.equal(cacheOfMirror(undefined), null);
});

Deno.test("cache size: the last size line of the log; formatted for humans", () => {
  const log = "2026-12-01T10:00:00Z devpod-image-cache size 4 KiB\n" +
    "2026-12-01T10:00:01Z level=info msg=response completed\n" +
    "2026-12-01T10:00:10Z devpod-image-cache size 20480 KiB\n";
  assert.equal(lastLoggedSize(log), 20480);
  assert.equal(lastLoggedSize("nothing here"), null);
  assert.equal(formatKiB(20480), "20.0 MiB");
  assert.equal(formatKiB(512), "512 KiB");
  assert.equal(formatKiB(3 * 1024 * 1024), "3.00 GiB");
  assert.equal(formatKiB(null), "size unknown");
});

const MACHINE = { ...MACHINE_SPEC, imageCache: "devpod-image-cache-a1b2c3" };

Deno.test("machine with a cache: mirror env, joins the cache's network without creating it", () => {
  const doc = YAML.parse(renderComposeFile(MACHINE));
  const m = doc.services.machine;
  assert.equal(m.environment.DEVPOD_REGISTRY_MIRROR, "http://devpod-image-cache-a1b2c3:5000");
  assert.deepEqual(m.networks, ["machine", "devpod-image-cache-a1b2c3"]);
  assert.deepEqual(doc.networks, {
    machine: {},
    "devpod-image-cache-a1b2c3": { external: true },
  });
  const dokploy = YAML.parse(renderComposeFile({ ...MACHINE, dokployNetwork: true }));
  assert.deepEqual(dokploy.services.machine.networks, [
    "dokploy-network",
    "devpod-image-cache-a1b2c3",
  ]);
  // No engine in the machine: nothing would pull through the cache.
  const none = YAML.parse(renderComposeFile({ ...MACHINE, dockerMode: "none" }));
  assert.deepEqual(none.services.machine.networks, ["machine"]);
  assert.equal(none.services.machine.environment.DEVPOD_REGISTRY_MIRROR, undefined);
  // Without a cache the file is what it was before caches existed.
  const plain = YAML.parse(renderComposeFile({ ...MACHINE, imageCache: null }));
  assert.deepEqual(plain.networks, { machine: {} });
  assert.equal(plain.services.machine.environment.DEVPOD_REGISTRY_MIRROR, undefined);
});

Deno.test("options: IMAGE_CACHE defaults on; a bad upstream names the option", () => {
  const base = { DOKPLOY_SERVER_URL: "https://d.example", DOKPLOY_API_TOKEN: "tok" };
  const c = loadConfig(base);
  assert.equal(c.imageCache, true);
  assert.equal(c.imageCacheImage, "registry:2.8.3");
  assert.equal(c.imageCacheUpstream, "https://registry-1.docker.io");
  assert.equal(
    loadConfig({ ...base, IMAGE_CACHE_UPSTREAM: "http://hub.internal:5000/" }).imageCacheUpstream,
    "http://hub.internal:5000",
  );
  assert.throws(
    () => loadConfig({ ...base, IMAGE_CACHE_UPSTREAM: "hub.internal/v2" }),
    /^ConfigError: IMAGE_CACHE_UPSTREAM "hub.internal\/v2" must be a registry URL/,
  );
  assert.throws(() => loadConfig({ ...base, IMAGE_CACHE: "maybe" }), /IMAGE_CACHE "maybe"/);
});

// ---- ensureImageCache against a scripted Dokploy ----

const CACHE_OLD = "devpod-image-cache-old111";
/** The machine's service this run made (the port check re-read it). */
const MINE = { composeId: "machine-1", createdAt: "2026-12-01T10:00:06Z", serverId: null };

Deno.test("ensure cache: off, or no engine in the machine: nothing asked of Dokploy", async () => {
  const offs: Record<string, string>[] = [{ IMAGE_CACHE: "false" }, { DOCKER_MODE: "none" }];
  for (const options of offs) {
    const f = scriptedDokploy([]);
    const plan = await ensureImageCache(cacheDeps(f.api, options).d, f.snapshot(), "e1", null);
    assert.deepEqual(plan, { serverId: null, appName: null, prebuilds: false });
    assert.deepEqual(f.calls, []);
  }
});

Deno.test("ensure cache: a deployed cache on the server is used at no extra call", async () => {
  const f = scriptedDokploy([cacheRow({}), cacheRow({ composeId: "x", serverId: "srv2" })]);
  const { d } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.deepEqual(plan, { serverId: null, appName: CACHE_OLD, prebuilds: true });
  assert.equal((await settleImageCache(d, plan, f.snapshot(), MINE)).appName, CACHE_OLD);
  assert.deepEqual(f.calls, []);
});

Deno.test("ensure cache: one on another server does not count; a failed one is not redeployed", async () => {
  const other = scriptedDokploy([cacheRow({ description: describeCache("srv2", "v9") })]);
  const { d } = cacheDeps(other.api);
  const plan = await ensureImageCache(d, other.snapshot(), "e1", null);
  assert.equal(plan.appName, "devpod-image-cache-zz1");
  assert.deepEqual(other.calls, ["compose.create"], "made, not deployed before the re-read");
  const settled = await settleImageCache(d, plan, other.snapshot(), MINE);
  assert.equal(settled.appName, "devpod-image-cache-zz1");
  assert.deepEqual(other.calls, ["compose.create", "compose.deploy mine-1"]);
  // It deployed: the machine kept it, nothing more to do.
  await settled.afterDeploy("devpod-image-cache-zz1", Promise.resolve());
  assert.equal(other.calls.length, 2);

  // Its last deploy failed: the machine goes without it, nothing queued ahead of it.
  const failed = scriptedDokploy([cacheRow({ composeStatus: "error" })]);
  const again = await ensureImageCache(cacheDeps(failed.api).d, failed.snapshot(), "e1", null);
  assert.equal(again.appName, null);
  assert.deepEqual(failed.calls, []);
});

Deno.test("ensure cache: parallel first creates converge on the oldest", async () => {
  const racer = cacheRow({ composeId: "racer", appName: "devpod-image-cache-racer1" });
  const f = scriptedDokploy([], { racer });
  const { d, lines } = cacheDeps(f.api);
  const plan = await ensureImageCache(d, f.snapshot(), "e1", null);
  assert.equal(plan.appName, "devpod-image-cache-zz1");
  // The re-read shows the racer's older cache: ours goes, undeployed.
  const settled = await settleImageCache(d, plan, f.snapshot(), MINE);
  assert.equal(settled.appName, "devpod-image-cache-racer1");
  assert.deepEqual(f.calls, ["compose.create", "compose.delete mine-1"]);
  assert.match(lines.join("\n"), /a parallel create made the image cache first/);
});

Deno.test("ensure cache: when Dokploy refuses it, the machine goes on without", async () => {
  const f = scriptedDokploy([], { failCreate: true });
  const { d, lines } = cacheDeps(f.api);
  assert.deepEqual(await ensureImageCache(d, f.snapshot(), "e1", null), {
    serverId: null,
    appName: null,
    prebuilds: false,
  });
  assert.match(lines.join("\n"), /warn the shared image cache of server local is unavailable/);
});
