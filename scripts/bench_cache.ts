/**
 * Image-cache figures for `deno task bench` (issue 11), on the real engine: what a machine's
 * `docker pull` costs through the shared cache, cold (the first machine of the server) and
 * warm (the next ones), against the floor: the same pull straight from the upstream by a
 * raw dind container with no mirror. The upstream is a local registry standing in for
 * Docker Hub, its sending rate capped with tc (BENCH_UPSTREAM_MBIT, default 200) as an
 * internet link would be; each round pulls a new image of BENCH_IMAGE_MIB (default 64) of
 * random bytes, so every cold pull is really cold. Bytes the upstream sent are read from
 * its log.
 *
 * This sandbox's DNS stalls every lookup of a name the engine does not know (10 s in Go),
 * and a nested dockerd looks up `docker.io` on each Docker Hub pull: the bench pins
 * docker.io in each machine's /etc/hosts so the figures show the pull, as on a server
 * with working DNS. Run alone with `deno run -A scripts/bench_cache.ts`.
 */
import { join } from "node:path";
import { runProvider, startWorld, type World } from "../tests/e2e/harness.ts";
import { type Engine, ensureEngine, run } from "../tests/engine/engine.ts";
import { docker, ensureImages, type TestImages } from "../tests/engine/images.ts";
import { recordCreated } from "../tests/engine/ledger.ts";
import {
  pushImage,
  removeRegistry,
  served,
  startUpstream,
  type Upstream,
} from "../tests/engine/registry.ts";
import { median } from "./bench_stats.ts";
import { releasingEngine } from "./engine_session.ts";

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;

const MBIT = Number(Deno.env.get("BENCH_UPSTREAM_MBIT") ?? 200);
const MIB = Number(Deno.env.get("BENCH_IMAGE_MIB") ?? 64);

function must<T extends { code: number; stderr: string }>(what: string, r: T): T {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.trim().slice(-1000)}`);
  return r;
}

/** A one-layer image of `mib` MiB of random bytes (incompressible: the layer is that big). */
async function randomImage(engine: Engine, tag: string, mib: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "devpod-bench-image-" });
  try {
    const file = await Deno.open(join(dir, "payload"), { write: true, create: true });
    const chunk = new Uint8Array(65536);
    for (let i = 0; i < mib * 16; i++) {
      crypto.getRandomValues(chunk);
      for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
    }
    file.close();
    must(
      `docker import ${tag}`,
      await run("sh", [
        "-c",
        'tar -C "$1" -c . | "$2" import - "$3"',
        "import",
        dir,
        engine.cli,
        tag,
      ], {
        env: { DOCKER_HOST: engine.host, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
        timeoutMs: 300_000,
      }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Caps what the container sends (its eth0 egress) at `mbit`; false when tc cannot. */
export async function capEgress(engine: Engine, container: string, mbit: number): Promise<boolean> {
  const pid = (await docker(engine, ["inspect", "-f", "{{.State.Pid}}", container])).stdout.trim();
  if (!pid || pid === "0") return false;
  const tc = ["-t", pid, "-n", "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate"];
  const r = await run("nsenter", [...tc, `${mbit}mbit`, "burst", "256kb", "latency", "100ms"]);
  return r.code === 0;
}

/** The machine's container id, by the provider's label. */
export async function machineContainer(engine: Engine, id: string): Promise<string> {
  const r = await docker(engine, ["ps", "-q", "--filter", `label=dev.devpod.machine-id=${id}`]);
  const c = r.stdout.split("\n").find(Boolean);
  if (!c) throw new Error(`no container for machine ${id}`);
  return c;
}

/** See the header: this sandbox's DNS would add 10 s to every Docker Hub pull. */
async function pinDockerIo(engine: Engine, container: string): Promise<void> {
  const line = "127.0.0.1 docker.io";
  must(
    "pin docker.io",
    await docker(engine, [
      "exec",
      container,
      "sh",
      "-c",
      `grep -qx '${line}' /etc/hosts || echo '${line}' >>/etc/hosts`,
    ]),
  );
}

/** `docker pull` inside a dind container, timed in ms. */
async function timedPull(engine: Engine, container: string, ref: string): Promise<number> {
  const t = performance.now();
  must(
    `pull ${ref} in ${container}`,
    await docker(engine, ["exec", container, "docker", "pull", "-q", ref], { timeoutMs: 600_000 }),
  );
  return performance.now() - t;
}

/** A dind container outside the provider, pulling straight from the upstream: the floor. */
async function rawDind(
  engine: Engine,
  images: TestImages,
  name: string,
  network: string,
  insecure: string,
): Promise<void> {
  const script =
    `dockerd --insecure-registry ${insecure} >/var/log/dockerd.log 2>&1 & exec sleep infinity`;
  await recordCreated("container", name, engine.host);
  must(
    "raw dind",
    await docker(engine, [
      "run",
      "-d",
      "--privileged",
      "--name",
      name,
      "--network",
      network,
      "--entrypoint",
      "/bin/sh",
      images.machine,
      "-c",
      script,
    ]),
  );
  const deadline = Date.now() + 60_000;
  while ((await docker(engine, ["exec", name, "docker", "info"])).code !== 0) {
    if (Date.now() > deadline) throw new Error("the raw dind container's dockerd did not start");
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The emulator on the real engine, machines with the image cache on the local test images. */
export function cacheBenchWorld(
  engine: Engine,
  images: TestImages,
  entry: string | undefined,
  options: Record<string, string>,
): Promise<World> {
  return startWorld({
    engine,
    entry,
    options: {
      MACHINE_IMAGE: images.machine,
      INACTIVITY_TIMEOUT: "0",
      READY_TIMEOUT: "120s",
      IMAGE_CACHE: "true",
      IMAGE_CACHE_IMAGE: images.cache,
      PREBUILD_PROXY_IMAGE: images.front,
      ...options,
    },
  });
}

export async function benchImageCache(
  engine: Engine,
  images: TestImages,
  rounds: number,
  entry: string | undefined,
  row: Row,
): Promise<void> {
  const tag = `bench${Deno.pid.toString(36)}`;
  const alias = `upstream-${tag}`;
  // The cache's compose runs the prebuild registry too (PREBUILDS, on by default).
  const w = await cacheBenchWorld(engine, images, entry, {
    IMAGE_CACHE_UPSTREAM: `http://${alias}:5000`,
  });
  const [a, b] = [`bench-ic-a-${tag}`, `bench-ic-b-${tag}`];
  const raw = `devpod-bench-raw-${tag}`;
  const local: string[] = [];
  let up: Upstream | undefined;
  const t = { create1: 0, create2: 0, direct: [] as number[], cold: [] as number[] };
  const warm: number[] = [];
  const sent = { direct: [] as number[], cold: [] as number[], warm: [] as number[] };
  let capped = false;
  try {
    let s = performance.now();
    must("create A", await w.run("create", a, { timeoutMs: 240_000 }));
    t.create1 = performance.now() - s;
    s = performance.now();
    must("create B", await w.run("create", b, { timeoutMs: 240_000 }));
    t.create2 = performance.now() - s;
    const listed = JSON.parse(
      must("list", await runProvider(["list", "--json"], w.env("unused"), { entry })).stdoutText,
    );
    const cacheApp: string = listed.imageCaches[0].appName;
    const [ca, cb] = [await machineContainer(engine, a), await machineContainer(engine, b)];
    for (const c of [ca, cb]) await pinDockerIo(engine, c);

    up = await startUpstream(engine, {
      image: images.cache,
      name: `devpod-bench-upstream-${tag}`,
      network: cacheApp,
      alias,
      source: images.tiny,
      labels: { "dev.devpod.test": `bench-${tag}` },
    });
    capped = await capEgress(engine, up.name, MBIT);
    await rawDind(engine, images, raw, cacheApp, `${alias}:5000`);

    for (let i = 0; i < rounds; i++) {
      const source = `devpod-test/bench-${tag}:${i}`;
      local.push(source);
      await randomImage(engine, source, MIB);
      const ref = `devpod-test/bench:${tag}-${i}`;
      await pushImage(engine, up, source, ref);
      // Alternated, so the upstream's page cache favours neither.
      const direct = async () => {
        const before = await served(engine, up!);
        t.direct.push(await timedPull(engine, raw, `${alias}:5000/${ref}`));
        sent.direct.push((await served(engine, up!, before)).blobBytes);
      };
      const cold = async () => {
        const before = await served(engine, up!);
        t.cold.push(await timedPull(engine, ca, ref));
        sent.cold.push((await served(engine, up!, before)).blobBytes);
      };
      if (i % 2 === 0) {
        await direct();
        await cold();
      } else {
        await cold();
        await direct();
      }
      const before = await served(engine, up);
      warm.push(await timedPull(engine, cb, ref));
      sent.warm.push((await served(engine, up, before)).blobBytes);
      for (const c of [ca, cb]) await docker(engine, ["exec", c, "docker", "rmi", ref]);
      await docker(engine, ["exec", raw, "docker", "rmi", `${alias}:5000/${ref}`]);
    }
  } finally {
    await docker(engine, ["rm", "-f", "-v", raw]);
    if (up) await removeRegistry(engine, up);
    for (const id of [a, b]) await w.run("delete", id).catch(() => {});
    await runProvider(["cleanup", "--yes"], w.env("unused"), { entry }).catch(() => {});
    await w.close();
    if (local.length) await docker(engine, ["rmi", ...local]);
  }
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
  const link = capped ? `upstream ${MBIT} Mbit/s` : "upstream uncapped (no tc)";
  const [direct, cold, hot] = [median(t.direct), median(t.cold), median(warm)];
  row(
    `image cache: cold pull, ${MIB} MiB (${link})`,
    `${sec(cold)}, upstream sent ${mib(median(sent.cold))}`,
    `direct pull ${sec(direct)}, sent ${mib(median(sent.direct))}`,
    `${(cold / direct).toFixed(2)}×`,
    "the first machine pays the download",
  );
  row(
    `image cache: warm pull, next machine`,
    `${sec(hot)}, upstream sent ${mib(median(sent.warm))}`,
    `direct pull ${sec(direct)}`,
    `${(hot / direct).toFixed(2)}×`,
    "upstream sends no blob",
  );
  row(
    "image cache: create, first on the server (makes the cache)",
    sec(t.create1),
    `next create ${sec(t.create2)}`,
    `${(t.create1 / t.create2).toFixed(2)}×`,
    "one extra deploy, once",
  );
}

/** `deno run -A scripts/bench_cache.ts`: the image cache's figures alone. */
async function standalone() {
  const engine = await ensureEngine();
  const images = await ensureImages(engine);
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
  const rows: string[][] = [];
  await benchImageCache(engine, images, rounds, undefined, (...r) => {
    rows.push(r);
    console.log(`  ${r[0]}: ${r[1]} vs ${r[2]} (${r[3]})`);
  });
  console.log("\n| figure | ours | baseline | ratio | target |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}

if (import.meta.main) Deno.exit(await releasingEngine(() => standalone().then(() => 0)));
