/**
 * One real-engine bench run on its own (`deno run -A scripts/bench_<x>.ts`): its rows as
 * they come, then the table and its figure line, as `deno task bench` prints them.
 */
import { type Engine, ensureEngine } from "../tests/engine/engine.ts";
import { ensureImages, type TestImages } from "../tests/engine/images.ts";
import { releasingEngine } from "./engine_session.ts";

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;
export type EngineBench = (
  engine: Engine,
  images: TestImages,
  rounds: number,
  entry: string | undefined,
  row: Row,
) => Promise<string | void>;

async function alone(bench: EngineBench) {
  const engine = await ensureEngine();
  const images = await ensureImages(engine);
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
  const rows: string[][] = [];
  const line = await bench(engine, images, rounds, undefined, (...r) => {
    rows.push(r);
    console.log(`  ${r[0]}: ${r[1]} vs ${r[2]} (${r[3]})`);
  });
  console.log("\n| figure | ours | baseline | ratio | target |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  if (line) console.log(`\n${line}`);
}

/** Runs `bench` alone and exits, releasing the shared engine. */
export async function runAlone(bench: EngineBench): Promise<never> {
  Deno.exit(await releasingEngine(() => alone(bench).then(() => 0)));
}
