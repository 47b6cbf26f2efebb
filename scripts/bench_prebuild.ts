/**
 * Prebuild figures for `deno task bench` (issue 20), on the real engine: DevPod's image step
 * of `up` (tests/engine/prebuild_support.ts: the agent's manifest check, then pull or
 * build, then the container starts) on the first machine of a server, which builds a
 * Dockerfile with a slow RUN step (BENCH_PREBUILD_SLOW_S, default 15) and pushes it, against
 * the next machines with the same config, which start from the prebuild. Each round is a
 * new config (a new tag), so every first `up` really builds, through the engine's BuildKit
 * as DevPod does (no image event: the watcher's poll finds it); the time from the end of
 * that build to the prebuild being in the registry is measured inside the machine. Ends with the figure line
 * `prebuilds: built once, reused by N machines, overwrite refused: yes|no`.
 * Run alone with `deno run -A scripts/bench_prebuild.ts`.
 */
import { runProvider, startWorld, type World } from "../tests/e2e/harness.ts";
import type { Engine } from "../tests/engine/engine.ts";
import type { TestImages } from "../tests/engine/images.ts";
import {
  type DevcontainerConfig,
  landedAt,
  prebuildTag,
  registryDigest,
  slowDockerfile,
  upEquivalent,
} from "../tests/engine/prebuild_support.ts";
import { saveImage } from "../tests/engine/world.ts";
import { PREBUILD_REPOSITORY } from "../lib/prebuild/spec.ts";
import { median } from "./bench_stats.ts";
import { runAlone } from "./bench_alone.ts";

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;

const SLOW_S = Number(Deno.env.get("BENCH_PREBUILD_SLOW_S") ?? 15);
/** Machines that reuse each prebuild, beside the one that builds it. */
const REUSERS = 2;

function must<T extends { code: number; stderr: string }>(what: string, r: T): T {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.trim().slice(-1000)}`);
  return r;
}

export async function benchPrebuilds(
  engine: Engine,
  images: TestImages,
  rounds: number,
  entry: string | undefined,
  row: Row,
): Promise<string> {
  const tag = `bench${Deno.pid.toString(36)}`;
  const w: World = await startWorld({
    engine,
    entry,
    options: {
      MACHINE_IMAGE: images.machine,
      INACTIVITY_TIMEOUT: "0",
      READY_TIMEOUT: "120s",
      IMAGE_CACHE: "true",
      IMAGE_CACHE_IMAGE: images.cache,
      PREBUILD_PROXY_IMAGE: images.front,
    },
  });
  const builder = `bench-pb-a-${tag}`;
  const reusers = Array.from({ length: REUSERS }, (_, i) => `bench-pb-${i}-${tag}`);
  const t = { first: [] as number[], next: [] as number[], push: [] as number[] };
  let refused = false;
  try {
    for (const id of [builder, ...reusers]) {
      must(`create ${id}`, await w.run("create", id, { timeoutMs: 240_000 }));
    }
    const saved = await saveImage({ engine }, images.tiny);
    must(
      "docker load",
      await w.run("command", builder, { command: "docker load -q", stdin: saved.stdout }),
    );
    let last: DevcontainerConfig | null = null;
    for (let i = 0; i < rounds; i++) {
      const config: DevcontainerConfig = {
        dockerfile: slowDockerfile(images.tiny, SLOW_S, `${tag}-${i}`),
        config: { name: `bench-${tag}-${i}`, build: { dockerfile: "Dockerfile" } },
      };
      // Watched from before the build on, so that the figure is not bounded below by the
      // rest of `up`. No event announces a BuildKit build: the watcher's poll finds it.
      const landing = landedAt(w, builder, await prebuildTag(config), 180);
      landing.catch(() => {}); // awaited below; a failed up must not leave it unhandled
      const first = await upEquivalent(w, builder, config);
      if (first.how !== "built" || first.builtAt === undefined) {
        throw new Error(`round ${i}: the first up did not build`);
      }
      t.first.push(first.seconds);
      t.push.push((await landing) - first.builtAt);
      for (const id of reusers) {
        const next = await upEquivalent(w, id, config);
        if (next.how !== "found" || next.output !== first.output) {
          throw new Error(`round ${i}: ${id} did not start from the prebuild`);
        }
        t.next.push(next.seconds);
      }
      last = config;
    }
    if (last) refused = await overwriteRefused(w, reusers[0], await prebuildTag(last));
  } finally {
    for (const id of [builder, ...reusers]) await w.run("delete", id).catch(() => {});
    await runProvider(["cleanup", "--yes"], w.env("unused"), { entry }).catch(() => {});
    await w.close();
  }
  const sec = (s: number) => `${s.toFixed(2)} s`;
  const [first, next] = [median(t.first), median(t.next)];
  row(
    `prebuilds: up of a Dockerfile devcontainer (${SLOW_S} s RUN step), next machine`,
    `${sec(next)} (from the prebuild)`,
    `first machine builds ${sec(first)}`,
    `${(next / first).toFixed(2)}×`,
    "no build on the next machines",
  );
  row(
    "prebuilds: BuildKit-built image in the registry after the build ends",
    sec(median(t.push)),
    "—",
    "—",
    "pushed by the machine within a few seconds, no extra step",
  );
  return `prebuilds: built once, reused by ${REUSERS} machines, overwrite refused: ${
    refused ? "yes" : "no"
  }`;
}

/**
 * Machine `id` makes an image of its own (a container of the prebuild with one more
 * file, committed), tags it as `tag` and pushes: the server must refuse, the tag stay.
 */
async function overwriteRefused(w: World, id: string, tag: string): Promise<boolean> {
  const before = await registryDigest(w, id, tag);
  const image = `${PREBUILD_REPOSITORY}:${tag}`;
  const own = `bench-own-${Deno.pid.toString(36)}`;
  const made = await w.run("command", id, {
    command: `docker run --name ${own} --network none ${image} sh -c 'echo other >/other' && ` +
      `docker commit ${own} ${own}:1 >/dev/null && docker rm ${own} >/dev/null && ` +
      `docker tag ${own}:1 ${image}`,
    timeoutMs: 120_000,
  });
  must("make an image of its own", made);
  const push = await w.run("command", id, { command: `docker push ${image}`, timeoutMs: 120_000 });
  return push.code !== 0 && before !== null && (await registryDigest(w, id, tag)) === before;
}

if (import.meta.main) await runAlone(benchPrebuilds);
