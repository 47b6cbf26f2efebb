/**
 * Agent-cache figures for `deno task bench` (issue 24), on the real engine: what DevPod's
 * agent download costs a machine through the server's agent cache, for the first machine
 * of a server (the cache fetches it from the release, verifies it, then serves it) and
 * the next ones (served from the cache), against the floor: the same download straight
 * from the release, as DevPod makes it without the cache. The release is a stand-in for
 * GitHub on the cache's network (tests/engine/agent_upstream.ts), its sending rate capped
 * with tc (BENCH_AGENT_MBIT, default 100) as an internet link would be; each round
 * publishes a new version of BENCH_AGENT_MIB (default 90) MiB of random bytes with its
 * checksums.txt, so every first download is really cold.
 *
 * Each download is DevPod's own command line in the machine over `command`
 * (`curl -fsSL <release URL> -o …`): through the machine's curl wrapper for the cache,
 * through /usr/bin/curl from the stand-in for the direct one. Run alone with
 * `deno run -A scripts/bench_agent.ts`.
 */
import { type AgentRelease, releasePath, releaseUrl } from "../lib/agent/line.ts";
import { runProvider, type World } from "../tests/e2e/harness.ts";
import {
  fakeAgent,
  type GithubStandIn,
  publish,
  startGithubStandIn,
} from "../tests/engine/agent_upstream.ts";
import { cacheBenchWorld, capEgress } from "./bench_cache.ts";
import { median } from "./bench_stats.ts";
import { type EngineBench, runAlone } from "./bench_alone.ts";

const MBIT = Number(Deno.env.get("BENCH_AGENT_MBIT") ?? 100);
const MIB = Number(Deno.env.get("BENCH_AGENT_MIB") ?? 90);
const AGENT = "/home/devpod/.devpod/devpod";

function must<T extends { code: number; stderr: string }>(what: string, r: T): T {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.trim().slice(-1000)}`);
  return r;
}

/** DevPod's agent download in the machine (seconds); the file's sha256 must be `sum`. */
async function download(w: World, id: string, curl: string, url: string, sum: string) {
  const command = `mkdir -p ${AGENT.slice(0, AGENT.lastIndexOf("/"))} && ` +
    `t0=$(date +%s.%N); sh -c "${curl} -fsSL ${url} -o ${AGENT}.$$" && ` +
    `t1=$(date +%s.%N) && sha256sum ${AGENT}.* | cut -d' ' -f1 && rm -f ${AGENT}.* && ` +
    `awk "BEGIN { print $t1 - $t0 }"`;
  const r = must(`download in ${id}`, await w.run("command", id, { command, timeoutMs: 600_000 }));
  const [got, seconds] = r.stdoutText.trim().split("\n");
  if (got !== sum) throw new Error(`${id} got sha256 ${got}, the release's is ${sum}`);
  return Number(seconds);
}

export const benchAgentCache: EngineBench = async (engine, images, rounds, entry, row) => {
  const tag = `bench${Deno.pid.toString(36)}`;
  const alias = `github-${tag}`;
  const w = await cacheBenchWorld(engine, images, entry, {
    PREBUILDS: "false",
    AGENT_CACHE_UPSTREAM: `http://${alias}:8080`,
  });
  const [a, b] = [`bench-ag-a-${tag}`, `bench-ag-b-${tag}`];
  let up: GithubStandIn | undefined;
  const t = { direct: [] as number[], first: [] as number[], next: [] as number[] };
  let sentOnce = true;
  let capped = false;
  try {
    must("create A", await w.run("create", a, { timeoutMs: 240_000 }));
    must("create B", await w.run("create", b, { timeoutMs: 240_000 }));
    const listed = JSON.parse(
      must("list", await runProvider(["list", "--json"], w.env("unused"), { entry })).stdoutText,
    );
    const cacheApp: string = listed.imageCaches[0].appName;
    up = await startGithubStandIn(engine, {
      name: `devpod-bench-github-${tag}`,
      image: images.front,
      network: cacheApp,
      alias,
      labels: { "dev.devpod.test": `bench-${tag}` },
    });
    capped = await capEgress(engine, up.name, MBIT);
    for (let i = 0; i < rounds; i++) {
      const r: AgentRelease = { line: "loft-sh", version: `v0.99.${i}`, arch: "amd64" };
      const sum = await publish(up.dir, r, fakeAgent(MIB * 1024 * 1024), "right");
      const direct = `${up.url}${releasePath(r)}`;
      // Alternated, so the stand-in's page cache favours neither.
      if (i % 2 === 0) {
        t.direct.push(await download(w, a, "/usr/bin/curl", direct, sum));
        t.first.push(await download(w, a, "curl", releaseUrl(r), sum));
      } else {
        t.first.push(await download(w, a, "curl", releaseUrl(r), sum));
        t.direct.push(await download(w, a, "/usr/bin/curl", direct, sum));
      }
      t.next.push(await download(w, b, "curl", releaseUrl(r), sum));
      // Once by the cache, once by the direct download: never again for B.
      sentOnce &&= (await up.gets(releasePath(r))) === 2;
    }
  } finally {
    for (const id of [a, b]) await w.run("delete", id).catch(() => {});
    await runProvider(["cleanup", "--yes"], w.env("unused"), { entry }).catch(() => {});
    await w.close();
    await up?.remove();
  }
  const [direct, first, next] = [median(t.direct), median(t.first), median(t.next)];
  const s = (x: number) => `${x.toFixed(2)} s`;
  const link = capped ? `release ${MBIT} Mbit/s` : "release uncapped (no tc)";
  row(
    `agent cache: first machine of a server, ${MIB} MiB agent (${link})`,
    `${s(first)} (fetched, verified, served)`,
    `direct download ${s(direct)}`,
    `${(first / direct).toFixed(2)}×`,
    "≤ 1.1×",
  );
  row(
    "agent cache: next machine",
    `${s(next)}${sentOnce ? ", release sent it once" : ""}`,
    `direct download ${s(direct)}`,
    `${(direct / next).toFixed(1)}× faster`,
    "≥ 10× faster",
  );
  return `agent cache: first ${first.toFixed(2)} s (direct ${direct.toFixed(2)} s), next ${
    next.toFixed(2)
  } s, sha256 verified: yes`;
};

if (import.meta.main) await runAlone(benchAgentCache);
