/**
 * `deno task bench`: a shared image cache whose image cannot be pulled (issue 18), on the
 * emulator's fast runtime with a real server's deploy time (1 s, as bench.ts's create):
 * a create beside it against one with IMAGE_CACHE=false, alternated in one project,
 * medians, and the cache deploys those creates queued (the target is none). The first
 * create, which tries the cache once and records why it failed, is shown apart. No engine
 * needed. Alone: `deno run -A scripts/bench_broken_cache.ts`.
 */
import { runProvider, startWorld } from "../tests/e2e/harness.ts";
import { median } from "./bench_stats.ts";

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;

export async function benchBrokenCache(
  rounds: number,
  entry: string | undefined,
  row: Row,
): Promise<void> {
  const w = await startWorld({
    deployDelayMs: 1000,
    entry,
    options: { IMAGE_CACHE: "true", IMAGE_CACHE_IMAGE: "registry-does-not-exist:2" },
  });
  const broken: number[] = [];
  const off: number[] = [];
  let first = 0;
  let cacheDeploys = 0;
  try {
    /** One create, timed; deleted after, so the port range never runs out. */
    const timed = async (id: string, env?: Record<string, string>) => {
      const started = performance.now();
      const r = await w.run("create", id, { env, timeoutMs: 120_000 });
      const ms = performance.now() - started;
      if (r.code !== 0) throw new Error(`create ${id} failed: ${r.stderr.trim().slice(-1000)}`);
      await w.run("delete", id);
      return ms;
    };
    first = await timed("bench-bc-first");
    const before = w.emu.requests.length;
    for (let i = 0; i < rounds; i++) {
      // Alternated, so the machine's load weighs on both alike.
      broken.push(await timed(`bench-bc-${i}`));
      off.push(await timed(`bench-off-${i}`, { IMAGE_CACHE: "false" }));
    }
    const cache = (await w.emu.snapshot()).composes.find((c) => c.name === "devpod-image-cache");
    cacheDeploys = w.emu.requests.slice(before).filter((r) =>
      r.procedure === "compose.deploy" &&
      (r.body as { composeId?: string } | null)?.composeId === cache?.composeId
    ).length;
  } finally {
    await runProvider(["cleanup", "--yes"], w.env("unused"), { entry }).catch(() => {});
    await w.close();
  }
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const [ours, baseline] = [median(broken), median(off)];
  row(
    "create beside a broken image cache",
    `${sec(ours)}, ${cacheDeploys} cache deploys in ${rounds} creates`,
    `IMAGE_CACHE=false ${sec(baseline)}`,
    `${(ours / baseline).toFixed(2)}×`,
    "≤ 1.2×, no cache deploy",
  );
  row(
    "first create beside it (tries the cache, records why)",
    sec(first),
    `IMAGE_CACHE=false ${sec(baseline)}`,
    `${(first / baseline).toFixed(2)}×`,
    "once per server and back-off",
  );
}

if (import.meta.main) {
  const rows: string[][] = [];
  await benchBrokenCache(Number(Deno.env.get("BENCH_ROUNDS") ?? 7), undefined, (...r) => {
    rows.push(r);
    console.log(`  ${r[0]}: ${r[1]} vs ${r[2]} (${r[3]})`);
  });
  console.log("\n| figure | ours | baseline | ratio | target |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}
