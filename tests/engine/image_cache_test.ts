/**
 * The shared image cache (issue 11) on a real Docker engine, every verb run as DevPod
 * runs it (`deno run mod.ts <verb>` with DevPod's environment). The cache runs the
 * `cache` test image (Debian's docker-registry, distribution 2.8.2) and pulls through
 * from a second local registry, the "upstream" standing in for Docker Hub: it holds
 * `devpod-test/tiny:1` and joins the cache's network under the alias that
 * IMAGE_CACHE_UPSTREAM names. No registry on the internet is reachable, nor needed.
 *
 * Machine A pulls through the cache (cold: the upstream serves the blobs); the upstream
 * is stopped; machine B pulls the same image (warm: from the cache alone). Other machines
 * on the cache's network reach a machine's sshd and nothing else of it. With the cache
 * stopped, a new machine still boots, its engine works, and a pull falls back to Docker
 * Hub and fails in bounded time instead of hanging.
 *
 * Timings here include this sandbox's DNS: the engine's embedded DNS forwards names it
 * does not know to the host's resolver, which the network guard blocks, so every lookup
 * of an unknown name waits out the resolver timeout (10 s in Go programs such as dockerd
 * and the registry). A nested dockerd looks up `docker.io` on every pull of a Docker Hub
 * image, so each such pull costs ~10 s here; on a server with DNS it costs nothing.
 *
 * Ends with one figure line:
 *   image cache: cold pull … s (upstream sent … B = …× the image), warm pull … s (upstream
 *   stopped, sent 0 B), fallback failure in … s, boot with the cache stopped … s
 */
import assert from "node:assert/strict";
import { runProvider } from "../e2e/harness.ts";
import { ensureEngine } from "./engine.ts";
import { ensureImages } from "./images.ts";
import {
  removeRegistry,
  served,
  type ServedSummary,
  startUpstream,
  stopRegistry,
  type Upstream,
} from "./registry.ts";
import {
  type EngineWorld,
  eventually,
  inspectMachine,
  leftovers,
  saveImage,
  startEngineWorld,
} from "./world.ts";

/** Unique to this test process: the engine may be shared with another run of the suite. */
const RUN = Deno.pid.toString(36);
const m = (name: string) => `ic-${name}-${RUN}`;
const UPSTREAM_ALIAS = `upstream-${RUN}`;
const UPSTREAM_NAME = `devpod-test-upstream-${RUN}`;
const TEST_LABEL = { "dev.devpod.test": `image-cache-${RUN}` };
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };
/** A pull that fails (mirror, then Docker Hub) waits out a few lookups here: bounded. */
const FAIL_BOUND_S = 100;

const figures = {
  coldS: NaN,
  coldBytes: 0,
  imageBytes: 0,
  warmS: NaN,
  fallbackS: NaN,
  bootStoppedS: NaN,
};

let world: EngineWorld;

function ok(what: string, r: { code: number; stderr: string }) {
  assert.equal(r.code, 0, `${what} failed:\n${r.stderr}`);
}

async function create(w: EngineWorld, id: string) {
  const t = performance.now();
  const r = await w.run("create", id, { timeoutMs: 240_000 });
  ok(`create ${id}`, r);
  return { r, seconds: (performance.now() - t) / 1000 };
}

async function sh(w: EngineWorld, id: string, command: string, timeoutMs = 150_000) {
  const r = await w.run("command", id, { command, timeoutMs });
  return { code: r.code, out: r.stdoutText, err: r.stderr };
}

/** `docker pull` in the machine, timed (seconds), bounded. */
async function pull(w: EngineWorld, id: string, ref: string) {
  const t = performance.now();
  const r = await sh(w, id, `timeout ${FAIL_BOUND_S + 20} docker pull ${ref} 2>&1`);
  return { ...r, seconds: (performance.now() - t) / 1000 };
}

async function list(w: EngineWorld) {
  const r = await runProvider(["list", "--json"], w.env("unused"));
  ok("list --json", r);
  return JSON.parse(r.stdoutText) as {
    machines: { machineId: string; imageCache: string | null }[];
    imageCaches: {
      appName: string;
      mirror: string;
      state: string;
      sizeKiB: number | null;
      machines: number;
    }[];
  };
}

/** The cache's container id (its compose project is its appName; the prebuild registry is there too). */
async function cacheContainer(w: EngineWorld, appName: string): Promise<string> {
  const r = await w.docker([
    "ps",
    "-aq",
    "--filter",
    `label=com.docker.compose.project=${appName}`,
    "--filter",
    "label=com.docker.compose.service=registry",
  ]);
  const id = r.stdout.split("\n").find(Boolean);
  assert.ok(id, `no container for the cache ${appName}`);
  return id;
}

/** Deletes machines and unused caches, whatever state a failed test left; never throws. */
async function tidy(w: EngineWorld, ids: string[]) {
  for (const id of ids) await w.run("delete", id).catch(() => {});
  await runProvider(["cleanup", "--yes"], w.env("unused")).catch(() => {});
}

Deno.test({
  name: "image cache (engine): set-up (engine, images incl. the registry, emulator)",
  ...NO_SANITIZE,
  async fn() {
    const engine = await ensureEngine();
    const images = await ensureImages(engine);
    world = await startEngineWorld({
      IMAGE_CACHE: "true",
      IMAGE_CACHE_IMAGE: images.cache,
      IMAGE_CACHE_UPSTREAM: `http://${UPSTREAM_ALIAS}:5000`,
    });
    const v = await world.docker(["run", "--rm", images.cache, "registry", "--version"]);
    assert.match(v.stdout, /2\.8\.\d/, "the cache image runs distribution 2.8");
  },
});

Deno.test({
  name: "image cache (engine): cold pull through it, warm pull with the upstream gone",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    const [a, b] = [m("a"), m("b")];
    let up: Upstream | undefined;
    let cacheApp = "";
    try {
      await t.step("create A: the provider deploys the cache, A joins its network", async () => {
        const { r } = await create(w, a);
        assert.match(r.stderr, /creating the shared image cache of server local/);
        const listed = await list(w);
        assert.equal(listed.imageCaches.length, 1);
        const cache = listed.imageCaches[0];
        cacheApp = cache.appName;
        assert.match(cacheApp, /^devpod-image-cache-/);
        assert.equal(cache.state, "Running");
        assert.equal(cache.mirror, `http://${cacheApp}:5000`);
        assert.equal(listed.machines.find((x) => x.machineId === a)?.imageCache, cacheApp);
        const c = await inspectMachine(w, a);
        assert.ok(cacheApp in c.NetworkSettings.Networks, "A is on the cache's network");
        const cid = await cacheContainer(w, cacheApp);
        const cc = JSON.parse((await w.docker(["inspect", cid])).stdout)[0];
        const bound = Object.values(cc.NetworkSettings.Ports ?? {}).filter((b) => b !== null);
        assert.deepEqual(bound, [], "the cache publishes no port");
        const mirrors = await sh(w, a, "docker info --format '{{json .RegistryConfig.Mirrors}}'");
        assert.equal(mirrors.code, 0, mirrors.err);
        assert.equal(JSON.parse(mirrors.out)[0], `http://${cacheApp}:5000/`);
      });

      await t.step("the upstream joins the cache's network with the test image", async () => {
        up = await startUpstream(w.engine, {
          image: w.images.cache,
          name: UPSTREAM_NAME,
          network: cacheApp,
          alias: UPSTREAM_ALIAS,
          source: w.images.tiny,
          labels: TEST_LABEL,
        });
        figures.imageBytes = up.blobBytes;
        assert.ok(up.blobBytes > 1_000_000, `${up.ref} holds ${up.blobBytes} bytes of blobs`);
      });

      let cacheBefore: ServedSummary;
      await t.step("A pulls cold: through the cache, the upstream sends the blobs", async () => {
        const cid = await cacheContainer(w, cacheApp);
        cacheBefore = await served(w.engine, { name: cid });
        const p = await pull(w, a, up!.ref);
        assert.equal(p.code, 0, `cold pull failed:\n${p.out}${p.err}`);
        assert.match(p.out, new RegExp(`Digest: ${up!.digest}`));
        figures.coldS = p.seconds;
        const run = await sh(w, a, `docker run --rm --network none ${up!.ref} echo nested-ok`);
        assert.equal(run.out, "nested-ok\n", run.err);

        const fromUpstream = await served(w.engine, up!);
        figures.coldBytes = fromUpstream.blobBytes;
        assert.ok(
          fromUpstream.blobBytes >= up!.blobBytes,
          `the upstream sent ${fromUpstream.blobBytes} of ${up!.blobBytes} blob bytes`,
        );
        const viaCache = await served(w.engine, { name: cid }, cacheBefore);
        assert.ok(
          viaCache.blobBytes >= up!.blobBytes && viaCache.manifestRequests >= 1,
          `A's pull went through the cache: ${JSON.stringify(viaCache.requests)}`,
        );
      });

      await t.step("the cache reports what it stores (list --json sizeKiB)", async () => {
        // The cache's size loop looks every 10 s.
        const size = await eventually("list to show the cache's new size", async () => {
          const c = (await list(w)).imageCaches[0];
          return c.sizeKiB !== null && c.sizeKiB * 1024 >= up!.blobBytes && c.sizeKiB;
        }, 45_000);
        assert.ok(size * 1024 < up!.blobBytes * 3, `size ${size} KiB is about the image`);
      });

      await t.step("the upstream stops; B pulls warm from the cache alone", async () => {
        await stopRegistry(w.engine, up!);
        const upstreamBefore = await served(w.engine, up!);
        await create(w, b);
        const cid = await cacheContainer(w, cacheApp);
        const before = await served(w.engine, { name: cid });
        const p = await pull(w, b, up!.ref);
        assert.equal(p.code, 0, `warm pull failed:\n${p.out}${p.err}`);
        assert.match(p.out, new RegExp(`Digest: ${up!.digest}`));
        figures.warmS = p.seconds;
        const run = await sh(w, b, `docker run --rm --network none ${up!.ref} echo warm-ok`);
        assert.equal(run.out, "warm-ok\n", run.err);
        const fromCache = await served(w.engine, { name: cid }, before);
        assert.ok(fromCache.blobBytes >= up!.blobBytes, "B's blobs came from the cache");
        assert.equal((await served(w.engine, up!, upstreamBefore)).requests.length, 0);
        const listed = await list(w);
        assert.equal(listed.imageCaches[0].machines, 2);
      });

      await t.step("over the cache's network B reaches A's sshd and nothing else", async () => {
        // A service in A's nested engine, published on A's interfaces (the cache network's
        // too): what a dev server in a workspace looks like to the other machines.
        const serve = await sh(
          w,
          a,
          `docker run -d --rm -p 8080:8080 ${
            up!.ref
          } sh -c 'echo hi >/i && httpd -f -p 8080 -h /' ` +
            `&& sleep 1 && curl -s --max-time 5 http://127.0.0.1:8080/i`,
        );
        assert.equal(serve.out.trim().split("\n").at(-1), "hi", serve.err);
        const ip = (await inspectMachine(w, a)).NetworkSettings.Networks[cacheApp].IPAddress;
        assert.ok(ip, "A has an address on the cache's network");
        const probe = (port: number) =>
          sh(
            w,
            b,
            `timeout 5 bash -c 'exec 3<>/dev/tcp/${ip}/${port}' && echo open || echo closed`,
          );
        assert.equal((await probe(22)).out, "open\n", "sshd is reachable, as through Dokploy");
        assert.equal((await probe(8080)).out, "closed\n", "A's published service is not");
      });

      await t.step("delete A and B: the cache stays; cleanup --yes removes it", async () => {
        for (const id of [a, b]) ok(`delete ${id}`, await w.run("delete", id));
        const cid = await cacheContainer(w, cacheApp);
        const state = await w.docker(["inspect", "--format", "{{.State.Status}}", cid]);
        assert.equal(state.stdout.trim(), "running", "delete keeps the server's cache");
        assert.equal((await list(w)).imageCaches[0].machines, 0);
        // The upstream is ours, on the cache's network: it goes first, or the network stays.
        await removeRegistry(w.engine, up!);
        const clean = await runProvider(["cleanup", "--yes"], w.env("unused"));
        ok("cleanup --yes", clean);
        assert.match(clean.stdoutText, new RegExp(`deleted image cache ${cacheApp}`));
        assert.deepEqual(await leftovers(w, cacheApp), {
          containers: [],
          volumes: [],
          networks: [],
        });
        assert.equal((await list(w)).imageCaches.length, 0);
      });
    } finally {
      if (up) await removeRegistry(w.engine, up);
      await removeRegistry(w.engine, { name: UPSTREAM_NAME });
      await tidy(w, [a, b]);
    }
  },
});

Deno.test({
  name:
    "image cache (engine): with the cache stopped a machine boots, docker works, pulls fall back",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    const [c, d] = [m("c"), m("d")];
    let cacheApp = "";
    try {
      await t.step("C makes a cache; an image it cannot get falls back to Docker Hub", async () => {
        await create(w, c);
        cacheApp = (await list(w)).imageCaches[0].appName;
        // No upstream on the network at all: the cache cannot get it either.
        const p = await pull(w, c, "devpod-test/absent:1");
        assert.notEqual(p.code, 0, "nothing has this image");
        assert.ok(p.seconds < FAIL_BOUND_S, `failed after ${p.seconds.toFixed(0)} s`);
        assert.match(
          p.out,
          /registry-1\.docker\.io/,
          `Docker Hub was tried after the mirror:\n${p.out}`,
        );
        const log = await sh(w, c, "sudo cat /run/devpod/dockerd.log");
        assert.match(log.out, /Attempting next endpoint for pull after error/);
      });

      await t.step("the cache stops: list says so", async () => {
        const cid = await cacheContainer(w, cacheApp);
        ok("docker stop", await w.docker(["stop", "-t", "5", cid]));
        assert.equal((await list(w)).imageCaches[0].state, "Stopped");
      });

      await t.step("D boots with the cache down, and its engine works", async () => {
        const { seconds } = await create(w, d);
        figures.bootStoppedS = seconds;
        const mirrors = await sh(w, d, "docker info --format '{{json .RegistryConfig.Mirrors}}'");
        assert.equal(mirrors.code, 0, `D's dockerd runs:\n${mirrors.err}`);
        assert.equal(JSON.parse(mirrors.out)[0], `http://${cacheApp}:5000/`);
        const saved = await saveImage(w, w.images.tiny);
        const load = await w.run("command", d, { command: "docker load", stdin: saved.stdout });
        ok("docker load", load);
        const run = await sh(w, d, `docker run --rm --network none ${w.images.tiny} echo down-ok`);
        assert.equal(run.out, "down-ok\n", run.err);
      });

      await t.step("D's pull tries the mirror, falls back, fails in bounded time", async () => {
        const p = await pull(w, d, "devpod-test/absent:1");
        figures.fallbackS = p.seconds;
        assert.notEqual(p.code, 0);
        assert.ok(p.seconds < FAIL_BOUND_S, `failed after ${p.seconds.toFixed(0)} s, not a hang`);
        assert.match(p.out, /registry-1\.docker\.io/, `Docker Hub was tried:\n${p.out}`);
        const log = await sh(w, d, "sudo cat /run/devpod/dockerd.log");
        assert.match(
          log.out,
          new RegExp(
            `Attempting next endpoint for pull after error: Get \\\\?"http://${cacheApp}:5000/v2/`,
          ),
          "the mirror was tried first",
        );
      });
    } finally {
      await tidy(w, [c, d]);
    }
    if (cacheApp) {
      assert.deepEqual(await leftovers(w, cacheApp), { containers: [], volumes: [], networks: [] });
    }
  },
});

Deno.test({
  name: "image cache (engine): teardown and figures",
  ...NO_SANITIZE,
  async fn() {
    await world.close();
    const left = await world.docker([
      "ps",
      "-aq",
      "--filter",
      `label=dev.devpod.test=image-cache-${RUN}`,
    ]);
    assert.equal(left.stdout.trim(), "", "no upstream of ours is left");
    const s = (x: number) => `${x.toFixed(1)} s`;
    console.log(
      `image cache: cold pull ${s(figures.coldS)} (upstream sent ${figures.coldBytes} B = ` +
        `${(figures.coldBytes / figures.imageBytes).toFixed(1)}× the image), warm pull ` +
        `${s(figures.warmS)} (upstream stopped, sent 0 B), fallback failure in ` +
        `${s(figures.fallbackS)}, boot with the cache stopped ${s(figures.bootStoppedS)} ` +
        "(pulls here include this sandbox's 10 s DNS stalls; deno task bench pins them out)",
    );
  },
});
