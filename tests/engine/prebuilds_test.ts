/**
 * Prebuilds on the server (issue 20) on a real Docker engine, every verb run as DevPod
 * runs it (`deno run mod.ts <verb>` with DevPod's environment). The image cache's compose
 * runs the prebuild registry beside it: the `cache` test image (Debian's docker-registry,
 * standing in for registry:2) as the store and the `front` image (Debian's nginx, for
 * nginx:alpine) as its unprivileged front. No DevPod agent runs here: prebuild_support.ts
 * does what it does in the machine (manifest GET to localhost:5151, then pull or build).
 *
 * Machine A builds a Dockerfile devcontainer with a slow RUN step, through the engine's
 * BuildKit as DevPod's agent does: the image is tagged with no event at all (docker 20.10,
 * as in the machine image), and the machine's watcher finds and pushes it all the same. Machine B, same config, finds it and starts from it without
 * building. A changed Dockerfile builds again (on B) and lands too. B cannot overwrite
 * A's tag, nor delete it. A tag older than the keep days goes at the store's next
 * collection. list shows the registry's size; cleanup removes all of it.
 *
 * Ends with two figure lines:
 *   prebuilds: built once, reused by N machines, overwrite refused: yes (…)
 *   stand-in: BuildKit build pushed: yes
 */
import assert from "node:assert/strict";
import { runProvider } from "../e2e/harness.ts";
import { ensureEngine } from "./engine.ts";
import { ensureImages } from "./images.ts";
import { FRONT_SERVICE, PREBUILD_REPOSITORY, STORE_SERVICE } from "../../lib/prebuild/spec.ts";
import {
  type DevcontainerConfig,
  prebuildTag,
  registryDigest,
  slowDockerfile,
  upEquivalent,
} from "./prebuild_support.ts";
import {
  type EngineWorld,
  eventually,
  inspectMachine,
  leftovers,
  saveImage,
  startEngineWorld,
} from "./world.ts";

const RUN = Deno.pid.toString(36);
const m = (name: string) => `pb-${name}-${RUN}`;
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };
/** Long enough that a build is told from a pull at a glance, short enough for CI. */
const SLOW_S = 12;

let world: EngineWorld;
const figures = {
  builtS: NaN,
  reusedS: [] as number[],
  rebuiltS: NaN,
  refused: false,
  buildKitPushed: false,
};

/** The image events a build emitted, but the watcher's own push of what it built. */
const buildEvents = (up: { imageEvents?: string[] }) =>
  (up.imageEvents ?? []).filter((e) => !e.startsWith("push:"));

function ok(what: string, r: { code: number; stderr: string }) {
  assert.equal(r.code, 0, `${what} failed:\n${r.stderr}`);
}

async function sh(w: EngineWorld, id: string, command: string, timeoutMs = 150_000) {
  const r = await w.run("command", id, { command, timeoutMs });
  return { code: r.code, out: r.stdoutText, err: r.stderr };
}

async function list(w: EngineWorld) {
  const r = await runProvider(["list", "--json"], w.env("unused"));
  ok("list --json", r);
  return JSON.parse(r.stdoutText) as {
    machines: { machineId: string; imageCache: string | null; prebuilds: boolean }[];
    imageCaches: {
      appName: string;
      state: string;
      prebuilds: { address: string; running: boolean; sizeKiB: number | null } | null;
    }[];
  };
}

/** The container of one service of the cache's compose project. */
async function serviceContainer(w: EngineWorld, appName: string, service: string) {
  const r = await w.docker([
    "ps",
    "-aq",
    "--filter",
    `label=com.docker.compose.project=${appName}`,
    "--filter",
    `label=com.docker.compose.service=${service}`,
  ]);
  const id = r.stdout.split("\n").find(Boolean);
  assert.ok(id, `no ${service} container in ${appName}`);
  return JSON.parse((await w.docker(["inspect", id])).stdout)[0];
}

/** The nested engine has no registry to pull the Dockerfile's base from: it is loaded. */
async function loadBase(w: EngineWorld, id: string) {
  const saved = await saveImage(w, w.images.tiny);
  ok(
    `docker load in ${id}`,
    await w.run("command", id, { command: "docker load -q", stdin: saved.stdout }),
  );
}

/** Waits for the machine's watcher to have pushed `tag` (seen from machine `from`). */
async function landed(w: EngineWorld, from: string, tag: string): Promise<string> {
  return await eventually(`${tag} in the prebuild registry`, async () => {
    return (await registryDigest(w, from, tag)) ?? false;
  }, 120_000);
}

Deno.test({
  name: "prebuilds (engine): set-up (engine, images incl. registry and nginx, emulator)",
  ...NO_SANITIZE,
  async fn() {
    const built = await ensureImages(await ensureEngine());
    world = await startEngineWorld({
      IMAGE_CACHE: "true",
      IMAGE_CACHE_IMAGE: built.cache,
    });
  },
});

Deno.test({
  name: "prebuilds (engine): A builds and pushes, B starts from it, a change builds, no overwrite",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    const [a, b, c] = [m("a"), m("b"), m("c")];
    const config: DevcontainerConfig = {
      dockerfile: slowDockerfile(w.images.tiny, SLOW_S, `v1-${RUN}`),
      config: { name: "prebuild-test", build: { dockerfile: "Dockerfile" } },
    };
    const changed: DevcontainerConfig = {
      ...config,
      dockerfile: slowDockerfile(w.images.tiny, SLOW_S, `v2-${RUN}`),
    };
    const tagA = await prebuildTag(config);
    const tagB = await prebuildTag(changed);
    let cacheApp = "";
    let builtOnA = "";
    let digestA = "";
    try {
      await t.step("create A: the cache's compose runs the prebuild registry too", async () => {
        ok(`create ${a}`, await w.run("create", a, { timeoutMs: 240_000 }));
        // Waited for: on a busy host the cache's proxy registry, whose upstream does not
        // resolve in this sandbox, may be between two restarts at the first look.
        const listed = await eventually("the image cache running", async () => {
          const l = await list(w);
          return l.imageCaches[0]?.state === "Running" && l;
        }, 60_000);
        const cache = listed.imageCaches[0];
        cacheApp = cache.appName;
        assert.equal(cache.prebuilds?.address, `${cacheApp}-prebuilds:5000`);
        assert.equal(listed.machines.find((x) => x.machineId === a)?.prebuilds, true);
        const front = await serviceContainer(w, cacheApp, FRONT_SERVICE);
        const store = await serviceContainer(w, cacheApp, STORE_SERVICE);
        assert.equal(front.State.Status, "running");
        assert.equal(front.Config.User, "65534:65534", "the front runs unprivileged");
        assert.deepEqual(front.HostConfig.CapDrop, ["ALL"]);
        for (const s of [front, store]) {
          const bound = Object.values(s.NetworkSettings.Ports ?? {}).filter((x) => x !== null);
          assert.deepEqual(bound, [], `${s.Name} publishes no port`);
        }
        assert.ok(
          cacheApp in front.NetworkSettings.Networks,
          "the front is on the cache's network",
        );
        assert.ok(
          !(cacheApp in store.NetworkSettings.Networks),
          "the store is not: machines reach it only through the front",
        );
        const mounts = store.Mounts.map((x: { Type: string; Destination: string }) =>
          `${x.Type}:${x.Destination}`
        );
        assert.deepEqual(mounts, ["volume:/var/lib/registry"], "its storage is a named volume");
        const machine = await inspectMachine(w, a);
        assert.ok(cacheApp in machine.NetworkSettings.Networks);
      });

      await t.step(
        "A: DevPod's check finds nothing, it builds with BuildKit (no event), A pushes",
        async () => {
          assert.equal(await registryDigest(w, a, tagA), null, "nothing there before");
          await loadBase(w, a);
          const up = await upEquivalent(w, a, config);
          assert.equal(up.how, "built");
          assert.ok(up.seconds >= SLOW_S, `the slow step ran (${up.seconds.toFixed(1)} s)`);
          // As DevPod's build on docker 20.10: the exporter tagged it, the engine said nothing.
          assert.deepEqual(buildEvents(up), [], "a BuildKit build emits no image event");
          figures.builtS = up.seconds;
          builtOnA = up.output;
          assert.match(builtOnA, new RegExp(`^v1-${RUN} build [0-9a-f-]{36}$`));
          digestA = await landed(w, a, tagA);
          const log = await sh(w, a, "sudo cat /run/devpod/prebuild-push.log");
          assert.match(log.out, new RegExp(`${tagA}: digest: ${digestA}`), log.out);
          figures.buildKitPushed = true;
        },
      );

      await t.step("B, same config: finds A's prebuild and starts from it, no build", async () => {
        ok(`create ${b}`, await w.run("create", b, { timeoutMs: 240_000 }));
        // B's engine has no base image: a build could not even start there.
        const up = await upEquivalent(w, b, config);
        assert.equal(up.how, "found");
        assert.equal(up.output, builtOnA, "B runs the very image A built");
        assert.ok(up.seconds < SLOW_S, `no slow step (${up.seconds.toFixed(1)} s)`);
        figures.reusedS.push(up.seconds);
        const history = await sh(w, b, `docker image ls -q ${PREBUILD_REPOSITORY}`);
        assert.equal(history.out.trim().split("\n").length, 1);
      });

      await t.step("C, same config: reuses it as well", async () => {
        ok(`create ${c}`, await w.run("create", c, { timeoutMs: 240_000 }));
        const up = await upEquivalent(w, c, config);
        assert.equal(up.how, "found");
        assert.equal(up.output, builtOnA);
        figures.reusedS.push(up.seconds);
      });

      await t.step("a changed Dockerfile is another tag: B builds it, and it lands", async () => {
        assert.notEqual(tagB, tagA);
        await loadBase(w, b);
        const up = await upEquivalent(w, b, changed);
        assert.equal(up.how, "built");
        assert.ok(up.seconds >= SLOW_S);
        assert.match(up.output, new RegExp(`^v2-${RUN} build `));
        assert.deepEqual(buildEvents(up), []);
        figures.rebuiltS = up.seconds;
        await landed(w, b, tagB);
      });

      await t.step("B cannot overwrite or delete A's tag", async () => {
        // B tags its own image as A's: its watcher sees the tag exists and pushes nothing;
        // a push by hand is refused by the server's front.
        const image = `${PREBUILD_REPOSITORY}:${tagA}`;
        const v2 = `${PREBUILD_REPOSITORY}:${tagB}`;
        ok("docker tag", await w.run("command", b, { command: `docker tag ${v2} ${image}` }));
        const push = await sh(w, b, `docker push ${image} 2>&1`);
        assert.notEqual(push.code, 0, `the push must fail:\n${push.out}`);
        assert.match(push.out, /denied|never overwrites a tag/i, push.out);
        const curl = (method: string) =>
          sh(
            w,
            b,
            `curl -s -o /dev/null -w '%{http_code}' -X ${method} ` +
              `-H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' ` +
              `--data-binary '{}' http://localhost:5151/v2/prebuilds/manifests/${tagA}`,
          );
        assert.equal((await curl("PUT")).out, "403");
        assert.equal((await curl("DELETE")).out, "403");
        assert.equal(await registryDigest(w, a, tagA), digestA, "A's tag is unchanged");
        const again = await upEquivalent(w, c, config);
        assert.equal(again.output, builtOnA, "and still starts what A built");
        figures.refused = true;
      });

      await t.step("racing first pushes of one tag: exactly one lands, it stays", async () => {
        // Eight valid manifests that differ (trailing spaces: other digests), PUT at once
        // under a new tag. Check-then-write is one step per tag at the front.
        const race = `devpod-race-${RUN}`;
        const base = "http://localhost:5151/v2/prebuilds/manifests";
        const type = "application/vnd.docker.distribution.manifest.v2+json";
        const r = await sh(
          w,
          b,
          `set -e; d=$(mktemp -d); cd "$d"
m=$(curl -fsS -H 'Accept: ${type}' ${base}/${tagB})
for i in 1 2 3 4 5 6 7 8; do
  { printf '%s' "$m"; printf "%\${i}s" ""; } >m$i
  ( code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: ${type}' \\
      --data-binary @m$i ${base}/${race}); echo "$i $code sha256:$(sha256sum m$i | cut -d' ' -f1)" >>codes ) &
done
wait; cat codes; cd /; rm -rf "$d"`,
        );
        assert.equal(r.code, 0, r.err);
        const rows = r.out.trim().split("\n").map((l) => l.split(" "));
        assert.equal(rows.length, 8, r.out);
        const won = rows.filter(([, code]) => code === "201");
        assert.equal(won.length, 1, `exactly one PUT is stored:\n${r.out}`);
        for (const [, code] of rows) assert.ok(["201", "403", "429"].includes(code), r.out);
        assert.equal(await registryDigest(w, a, race), won[0][2], "the tag is the winner's");
      });

      await t.step("list shows what the registry holds", async () => {
        const size = await eventually("the prebuild registry's size", async () => {
          const p = (await list(w)).imageCaches[0].prebuilds;
          return p?.sizeKiB != null && p.sizeKiB > 1024 && p.sizeKiB;
        }, 60_000);
        assert.ok(size > 1024, `${size} KiB`);
        // The cache's registry restarts every few seconds here (no Docker Hub to reach at
        // its start), and doctor reports a cache whose registry is down as Stopped: asked
        // again until it catches the registry up.
        const line = /prebuild registry holds .*--prebuild-repository localhost:5151\/prebuilds/;
        await eventually("doctor shows the prebuild registry", async () => {
          const doctor = await runProvider(["doctor"], w.env("unused"));
          return line.test(doctor.stdoutText);
        }, 60_000);
      });

      await t.step(
        "a tag pushed more than 7 days ago goes at the store's next collection",
        async () => {
          const store = await serviceContainer(w, cacheApp, STORE_SERVICE);
          const link =
            `/var/lib/registry/docker/registry/v2/repositories/prebuilds/_manifests/tags/${tagA}/current/link`;
          ok(
            "age A's tag",
            await w.docker(["exec", store.Id, "touch", "-d", "8 days ago", link]),
          );
          ok("restart the store", await w.docker(["restart", "-t", "5", store.Id]));
          await eventually("A's tag collected", async () => {
            return (await registryDigest(w, a, tagA)) === null;
          }, 60_000);
          assert.ok(await registryDigest(w, a, tagB), "the newer tag stays");
          const logs = await w.docker(["logs", store.Id]);
          assert.match(
            logs.stdout + logs.stderr,
            new RegExp(`devpod-prebuilds removed prebuilds:${tagA}`),
          );
        },
      );

      await t.step(
        "delete the machines; cleanup --yes removes the registry and its storage",
        async () => {
          for (const id of [a, b, c]) ok(`delete ${id}`, await w.run("delete", id));
          const clean = await runProvider(["cleanup", "--yes"], w.env("unused"));
          ok("cleanup --yes", clean);
          assert.match(
            clean.stdoutText,
            new RegExp(`deleted image cache ${cacheApp} and its prebuild registry`),
          );
          assert.deepEqual(await leftovers(w, cacheApp), {
            containers: [],
            volumes: [],
            networks: [],
          });
        },
      );
    } finally {
      for (const id of [a, b, c]) await w.run("delete", id).catch(() => {});
      await runProvider(["cleanup", "--yes"], w.env("unused")).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "prebuilds (engine): a cache made without them gets them at the next create, its registry left running",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    const [old, next] = [m("old"), m("next")];
    let cacheApp = "";
    try {
      await t.step(
        "PREBUILDS=false: the cache has no prebuild registry, nor has the machine",
        async () => {
          const off = { env: { PREBUILDS: "false" }, timeoutMs: 240_000 };
          ok(`create ${old}`, await w.run("create", old, off));
          const listed = await list(w);
          cacheApp = listed.imageCaches[0].appName;
          assert.equal(listed.imageCaches[0].prebuilds, null);
          assert.equal(listed.machines.find((x) => x.machineId === old)?.prebuilds, false);
          const none = await sh(
            w,
            old,
            "curl -s --max-time 5 http://localhost:5151/v2/ || echo refused",
          );
          assert.match(none.out, /refused/, "nothing listens on localhost:5151");
        },
      );

      await t.step("the next create adds it; the cache container is not recreated", async () => {
        const cache = await serviceContainer(w, cacheApp, "registry");
        const r = await w.run("create", next, { timeoutMs: 240_000 });
        ok(`create ${next}`, r);
        assert.match(
          r.stderr,
          new RegExp(`adding the prebuild registry to the image cache ${cacheApp}`),
        );
        const listed = await list(w);
        assert.equal(listed.imageCaches.length, 1);
        assert.equal(listed.imageCaches[0].prebuilds?.running, true);
        assert.equal(listed.machines.find((x) => x.machineId === next)?.prebuilds, true);
        assert.equal(
          listed.machines.find((x) => x.machineId === old)?.prebuilds,
          false,
          "made without",
        );
        const after = await serviceContainer(w, cacheApp, "registry");
        // Not recreated: compose found it up to date. (Its StartedAt may move here all the
        // same: a proxy registry whose upstream does not resolve, as in this sandbox, exits
        // and its restart policy starts it again.)
        assert.equal(after.Id, cache.Id, "the same cache container");
        const v2 = await sh(
          w,
          next,
          "curl -s -o /dev/null -w '%{http_code}' http://localhost:5151/v2/",
        );
        assert.equal(v2.out, "200", "the new machine reaches it");
      });
    } finally {
      for (const id of [old, next]) await w.run("delete", id).catch(() => {});
      await runProvider(["cleanup", "--yes"], w.env("unused")).catch(() => {});
    }
    if (cacheApp) {
      assert.deepEqual(await leftovers(w, cacheApp), { containers: [], volumes: [], networks: [] });
    }
  },
});

Deno.test({
  name: "prebuilds (engine): teardown and figures",
  ...NO_SANITIZE,
  async fn() {
    await world.close();
    const reused = figures.reusedS.map((s) => `${s.toFixed(1)} s`).join(", ");
    console.log(
      `prebuilds: built once, reused by ${figures.reusedS.length} machines, overwrite refused: ${
        figures.refused ? "yes" : "no"
      } (build with a ${SLOW_S} s RUN step ${figures.builtS.toFixed(1)} s, reuse ${reused}, ` +
        `changed Dockerfile rebuilt in ${figures.rebuiltS.toFixed(1)} s)`,
    );
    console.log(`stand-in: BuildKit build pushed: ${figures.buildKitPushed ? "yes" : "no"}`);
  },
});
