/**
 * Scale on paper (issue 13): `deno task bench` at 3 servers × 20 machines against the
 * emulator, every machine a real sshd (host runtime). Creates go through the real entry
 * point with DOKPLOY_SERVER_ID=auto, a fixed mix of sizes, BENCH_SCALE_CONCURRENCY at a
 * time, and Dokploy's deploy queue (one deploy at a time per server, each
 * BENCH_SCALE_DEPLOY_MS long). Figures: placement per server (from `list --json`), create
 * wall times against the same creates all on one server, API calls per verb and the
 * project.one payload at 2 and at 61 machines in the project, `status` time at both.
 * Prints a table like the other bench scripts; no assertions.
 *
 * Standalone: `deno run -A scripts/bench_scale.ts` (runs mod.ts); bench.ts passes its
 * bundle. Knobs: BENCH_SCALE_PER_SERVER (20), BENCH_SCALE_CONCURRENCY (6),
 * BENCH_SCALE_DEPLOY_MS (1000), BENCH_SCALE_ONE_SERVER (machines for the one-server
 * baseline; default all of them), BENCH_SCALE_ROUNDS (7, for status and project.one).
 */
import { runCounted } from "../tests/e2e/api_calls.ts";
import { runProvider, type RunResult, startWorld, type World } from "../tests/e2e/harness.ts";
import type { ServerOption } from "../tests/emulator/mod.ts";
import { median, time } from "./bench_stats.ts";

const knob = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const PER_SERVER = knob("BENCH_SCALE_PER_SERVER", 20);
const CONCURRENCY = knob("BENCH_SCALE_CONCURRENCY", 6);
const DEPLOY_MS = knob("BENCH_SCALE_DEPLOY_MS", 1000);
const ROUNDS = knob("BENCH_SCALE_ROUNDS", 7);

/**
 * Servers without monitoring (placement by fewest requested CPUs), on addresses of their
 * own (no other emulator hands these out), so any port range is free there: the
 * one-server baseline needs more ports than a harness world's 40.
 */
const SERVERS: ServerOption[] = [
  { serverId: "srv-a", name: "alpha", ipAddress: "127.0.0.71" },
  { serverId: "srv-b", name: "beta", ipAddress: "127.0.0.72" },
  { serverId: "srv-c", name: "gamma", ipAddress: "127.0.0.73" },
];
const SOLO: ServerOption[] = [{ serverId: "srv-solo", name: "solo", ipAddress: "127.0.0.74" }];
const PORTS = { SSH_PORT_RANGE: "32200-32399" };
const TOTAL = SERVERS.length * PER_SERVER;
const ONE_SERVER = knob("BENCH_SCALE_ONE_SERVER", TOTAL);

/** Sizes within this 2-CPU machine's own (the emulator refuses more CPUs than it has). */
const CPUS = ["0.5", "1", "2"];
const MEMORY = ["1g", "2g", "4g"];
/** Machine i's size: every CPU/memory pair once per 9 machines, in a fixed order. */
const sizeOf = (i: number) => ({
  MACHINE_CPUS: CPUS[i % 3],
  MACHINE_MEMORY: MEMORY[Math.floor(i / 3) % 3],
});

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;

const ms = (x: number) => `${x.toFixed(0)} ms`;
const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
const num = (x: number) => String(Math.round(x * 100) / 100);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

/** "1g", "2048m" → MiB. */
function mebibytes(size: string | null): number {
  const m = /^(\d+(?:\.\d+)?)([kmg])?b?$/i.exec(size ?? "");
  if (!m) return 0;
  const unit = { k: 1 / 1024, m: 1, g: 1024 }[(m[2] ?? "m").toLowerCase() as "k" | "m" | "g"];
  return Number(m[1]) * unit;
}

interface CreateRun {
  /** Wall time of each create, in the order of ids. */
  times: number[];
  wallMs: number;
  failures: string[];
  /** Creates whose placement changed on the recheck (a parallel create took the choice). */
  moved: number;
  /** Every request the creates made, and how many of them polled for the deploy. */
  requests: number;
  deployPolls: number;
}

/** Creates `ids`, at most `concurrency` at a time (a pool: the next starts as one ends). */
async function createMany(
  w: World,
  ids: string[],
  envOf: (i: number) => Record<string, string>,
  concurrency: number,
): Promise<CreateRun> {
  const times: number[] = new Array(ids.length);
  const failures: string[] = [];
  let moved = 0;
  let next = 0;
  const before = w.emu.requests.length;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const t = performance.now();
      const r = await w.run("create", ids[i], { env: envOf(i), timeoutMs: 300_000 });
      times[i] = performance.now() - t;
      if (r.code !== 0) failures.push(`${ids[i]}: ${r.stderr.trim().split("\n").at(-1)}`);
      if (/a parallel create went to the first choice/.test(r.stderr)) moved++;
    }
  };
  const wallMs = await time(() =>
    Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker))
  );
  const made = w.emu.requests.slice(before);
  const deployPolls = made.filter((r) => r.procedure === "deployment.allByCompose").length;
  return { times, wallMs, failures, moved, requests: made.length, deployPolls };
}

/** A GET of the emulated Dokploy API from this process, timed. */
async function apiGet(w: World, procedure: string, params: Record<string, string> = {}) {
  const t = performance.now();
  const res = await fetch(`${w.emu.url}/api/${procedure}?${new URLSearchParams(params)}`, {
    headers: { "x-api-key": w.emu.token },
  });
  const body = await res.text();
  const ms = performance.now() - t;
  if (!res.ok) throw new Error(`${procedure}: ${res.status} ${body}`);
  return { body, ms };
}

/** Bytes and median time (in-process fetch, warm) of the project's project.one. */
async function projectOne(w: World): Promise<{ bytes: number; ms: number; machines: number }> {
  const all = JSON.parse((await apiGet(w, "project.all")).body) as {
    projectId: string;
    name: string;
  }[];
  const projectId = all.find((p) => p.name === w.env("x").DOKPLOY_PROJECT_NAME)!.projectId;
  const times: number[] = [];
  let body = "";
  for (let i = 0; i < ROUNDS + 1; i++) {
    const r = await apiGet(w, "project.one", { projectId });
    if (i > 0) times.push(r.ms); // the first warms the connection
    body = r.body;
  }
  const project = JSON.parse(body);
  const machines =
    (project.environments ?? []).flatMap((e: { compose?: unknown[] }) => e.compose ?? []).length;
  return { bytes: new TextEncoder().encode(body).length, ms: median(times), machines };
}

/** A run the figures rely on: its failure ends the bench (a figure of a failure misleads). */
function must(what: string, r: RunResult): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}`);
  return r;
}

/** `status` wall times: with the machine's state file, and as if it were lost (by marker). */
async function statusTimes(w: World, id: string, entry?: string) {
  const withState = [];
  const byMarker = [];
  for (let i = 0; i < ROUNDS; i++) {
    withState.push(await time(async () => must("status", await w.run("status", id))));
    // An empty MACHINE_FOLDER: found by its marker in the project (project.all + project.one).
    const empty = await Deno.makeTempDir({ dir: w.root, prefix: "lost-" });
    const env = { ...w.env(id), MACHINE_FOLDER: empty };
    byMarker.push(
      await time(async () =>
        must("status by marker", await runProvider(["status"], env, { entry }))
      ),
    );
  }
  return { withState: median(withState), byMarker: median(byMarker) };
}

const VERBS = ["create", "status", "stop", "start", "delete", "list"] as const;
type Counts = Record<(typeof VERBS)[number], { calls: string[]; ms: number }>;

/** Each verb on one new machine (auto), counted as the round-trip test counts. */
async function countVerbs(w: World, id: string): Promise<Counts> {
  const out = {} as Counts;
  for (const verb of VERBS) {
    const t = performance.now();
    const { result, calls } = await runCounted(w, verb, verb === "list" ? "unused" : id, {
      env: { DOKPLOY_SERVER_ID: "auto", ...sizeOf(0) },
    });
    must(verb, result);
    out[verb] = { calls, ms: performance.now() - t };
  }
  return out;
}

/** Machines, requested CPUs and memory per server, from `list --json`. */
async function placement(w: World, entry?: string) {
  const r = await runProvider(["list", "--json"], w.env("unused"), { entry });
  must("list", r);
  const per = new Map<string, { machines: number; cpus: number; memoryMiB: number }>(
    SERVERS.map((x) => [x.serverId, { machines: 0, cpus: 0, memoryMiB: 0 }]),
  );
  const machines = JSON.parse(r.stdoutText).machines as {
    serverId: string | null;
    cpus: string | null;
    memory: string | null;
  }[];
  for (const m of machines) {
    const key = m.serverId ?? "local";
    const p = per.get(key) ?? { machines: 0, cpus: 0, memoryMiB: 0 };
    p.machines++;
    p.cpus += Number(m.cpus ?? 0);
    p.memoryMiB += mebibytes(m.memory);
    per.set(key, p);
  }
  return per;
}

function timesLine(run: CreateRun) {
  return `median ${s(median(run.times))}, p95 ${s(percentile(run.times, 0.95))}, max ${
    s(Math.max(...run.times))
  }`;
}

/**
 * The scale figures; `entry` is the provider program (bench.ts's bundle), mod.ts when
 * absent. Prints its own table.
 */
export async function benchScale(entry?: string): Promise<void> {
  const rows: string[][] = [];
  const row: Row = (name, ours, baseline, ratio, target) => {
    rows.push([name, ours, baseline, ratio, target]);
    console.log(`  ${name}: ${ours} vs ${baseline} (${ratio})`);
  };
  console.log(
    `bench scale: ${SERVERS.length} servers × ${PER_SERVER} machines, ${CONCURRENCY} creates at a time, deploy ${
      ms(DEPLOY_MS)
    } (one at a time per server), provider ${entry ? "bundle" : "mod.ts"}`,
  );
  const worldOpts = { deployDelayMs: DEPLOY_MS, entry, options: PORTS };
  const notes: string[] = [];

  // --- 3 servers: a small project first (the baseline of the per-verb figures), then 60.
  const w = await startWorld({ ...worldOpts, servers: SERVERS });
  let spread: CreateRun;
  /** Deploys on the busiest server: the floor of the spread run's wall time. */
  let busiest = 0;
  /** project.one bytes per machine, and at the full project. */
  let payload = { perMachine: 0, bytes: 0, machines: 0 };
  try {
    const auto = { DOKPLOY_SERVER_ID: "auto" };
    must("seed create", await w.run("create", "scale-seed", { env: { ...auto, ...sizeOf(0) } }));
    const small = await countVerbs(w, "scale-probe");
    must("probe create", await w.run("create", "scale-probe", { env: { ...auto, ...sizeOf(0) } }));
    const smallOne = await projectOne(w);
    const smallStatus = await statusTimes(w, "scale-probe", entry);
    for (const id of ["scale-probe", "scale-seed"]) {
      must(`delete ${id}`, await w.run("delete", id));
    }

    const ids = Array.from({ length: TOTAL }, (_, i) => `scale-${String(i).padStart(2, "0")}`);
    spread = await createMany(w, ids, (i) => ({ ...auto, ...sizeOf(i) }), CONCURRENCY);
    console.log(`  ${TOTAL} auto creates: ${s(spread.wallMs)}, ${timesLine(spread)}`);

    // 1. Placement.
    const per = await placement(w, entry);
    const wanted = ids.map((_, i) => sizeOf(i));
    const fair = wanted.reduce((a, x) => a + Number(x.MACHINE_CPUS), 0) / SERVERS.length;
    for (const srv of SERVERS) {
      const p = per.get(srv.serverId)!;
      row(
        `placement: ${srv.name}`,
        `${p.machines} machines, ${num(p.cpus)} CPU / ${num(p.memoryMiB / 1024)} GiB requested`,
        `even share ${num(TOTAL / SERVERS.length)} machines, ${num(fair)} CPU`,
        `${(p.cpus / fair).toFixed(2)}× of even`,
        "—",
      );
    }
    for (const [key, p] of per) {
      if (!SERVERS.some((x) => x.serverId === key)) {
        notes.push(`${p.machines} machine(s) landed on ${key}, not on a remote server`);
      }
    }
    busiest = Math.max(...SERVERS.map((x) => per.get(x.serverId)!.machines));
    const cpus = SERVERS.map((x) => per.get(x.serverId)!.cpus);
    const mem = SERVERS.map((x) => per.get(x.serverId)!.memoryMiB / 1024);
    row(
      "placement: spread (max − min requested)",
      `${num(Math.max(...cpus) - Math.min(...cpus))} CPU, ${
        num(Math.max(...mem) - Math.min(...mem))
      } GiB`,
      "largest machine 2 CPU / 4 GiB",
      `${((Math.max(...cpus) - Math.min(...cpus)) / 2).toFixed(2)}× of the largest`,
      "≤ largest machine",
    );

    notes.push(`${spread.moved} of ${TOTAL} auto creates moved on the recheck (a parallel create)`);

    // 3. API calls per verb and what every project read costs, at 60 machines.
    const large = await countVerbs(w, "scale-probe");
    must("probe create", await w.run("create", "scale-probe", { env: { ...auto, ...sizeOf(0) } }));
    const largeOne = await projectOne(w);
    const largeStatus = await statusTimes(w, "scale-probe", entry);
    for (const verb of VERBS) {
      const [a, b] = [large[verb].calls.length, small[verb].calls.length];
      row(
        `API calls: ${verb}${verb === "create" ? " (auto)" : ""}`,
        `${a} beside ${largeOne.machines - 1} machines, ${s(large[verb].ms)}`,
        `${b} beside ${smallOne.machines - 1}, ${s(small[verb].ms)}`,
        a === b ? "same" : `${a - b > 0 ? "+" : ""}${a - b}`,
        verb === "list" ? "2 per machine" : "constant",
      );
    }
    const perMachine = (largeOne.bytes - smallOne.bytes) / (largeOne.machines - smallOne.machines);
    payload = { perMachine, bytes: largeOne.bytes, machines: largeOne.machines };
    row(
      "project.one payload",
      `${kib(largeOne.bytes)} at ${largeOne.machines} machines`,
      `${kib(smallOne.bytes)} at ${smallOne.machines}`,
      `${(largeOne.bytes / smallOne.bytes).toFixed(1)}×, ${perMachine.toFixed(0)} B/machine`,
      "linear",
    );
    row(
      "project.one server time (in-process fetch)",
      `${largeOne.ms.toFixed(2)} ms`,
      `${smallOne.ms.toFixed(2)} ms`,
      `${(largeOne.ms / smallOne.ms).toFixed(2)}×`,
      "—",
    );
    row(
      "status (state file: compose.one + containers)",
      `${ms(largeStatus.withState)} at ${largeOne.machines}`,
      `${ms(smallStatus.withState)} at ${smallOne.machines}`,
      `${(largeStatus.withState / smallStatus.withState).toFixed(2)}×`,
      "flat",
    );
    row(
      "status, state file lost (by marker)",
      `${ms(largeStatus.byMarker)} at ${largeOne.machines}`,
      `${ms(smallStatus.byMarker)} at ${smallOne.machines}`,
      `${(largeStatus.byMarker / smallStatus.byMarker).toFixed(2)}×`,
      "—",
    );
    for (const verb of VERBS) {
      const calls = large[verb].calls;
      const tally = Object.entries(Object.groupBy(calls, (c) => c))
        .map(([c, n]) => `${c} ×${n!.length}`).join(", ");
      notes.push(
        `${verb} beside ${largeOne.machines - 1} machines: ${
          verb === "list" ? tally : calls.join(" → ")
        }`,
      );
    }
  } finally {
    await w.close();
  }

  // --- 2. The deploy queue: the same creates, all on one server.
  const one = await startWorld({ ...worldOpts, servers: SOLO });
  let solo: CreateRun;
  try {
    const ids = Array.from({ length: ONE_SERVER }, (_, i) => `solo-${String(i).padStart(2, "0")}`);
    solo = await createMany(
      one,
      ids,
      (i) => ({ DOKPLOY_SERVER_ID: "solo", ...sizeOf(i) }),
      CONCURRENCY,
    );
    console.log(`  ${ONE_SERVER} creates on one server: ${s(solo.wallMs)}, ${timesLine(solo)}`);
  } finally {
    await one.close();
  }
  const sameCount = ONE_SERVER === TOTAL;
  const spreadWall = sameCount ? spread.wallMs : spread.wallMs * ONE_SERVER / TOTAL;
  row(
    "create wall time per machine",
    `${SERVERS.length} servers: ${timesLine(spread)}`,
    `1 server: ${timesLine(solo)}`,
    `${(median(solo.times) / median(spread.times)).toFixed(2)}× faster (median)`,
    "—",
  );
  row(
    `${ONE_SERVER} creates, total`,
    `${s(spreadWall)} over ${SERVERS.length} servers ${
      sameCount
        ? `(busiest server's ${busiest} deploys alone ≥ ${s(busiest * DEPLOY_MS)})`
        : `(scaled from ${TOTAL})`
    }`,
    `${s(solo.wallMs)} on one (deploys alone ≥ ${s(ONE_SERVER * DEPLOY_MS)})`,
    `${(solo.wallMs / spreadWall).toFixed(2)}× faster`,
    `≈ ${SERVERS.length}× (a deploy queue per server)`,
  );
  const perCreate = (run: CreateRun, n: number) =>
    `${num(run.requests / run.times.length)} requests, ${num(n / run.times.length)} deploy polls`;
  row(
    "requests per create, polls included",
    `${SERVERS.length} servers: ${perCreate(spread, spread.deployPolls)}`,
    `1 server: ${perCreate(solo, solo.deployPolls)}`,
    `${(solo.deployPolls / spread.deployPolls).toFixed(2)}× the polls`,
    "—",
  );
  for (const [label, run] of [["auto", spread], ["one server", solo]] as const) {
    if (run.failures.length) {
      notes.push(`${label}: ${run.failures.length} create(s) failed, e.g. ${run.failures[0]}`);
    }
  }

  console.log("\n| figure | ours | baseline | ratio | target |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log(
    `\n${TOTAL} machines over ${SERVERS.length} servers (${CONCURRENCY} creates at a time, deploys ${
      ms(DEPLOY_MS)
    }, one at a time per server) took ${s(spread.wallMs)}; on one server ${
      s(solo.wallMs)
    } for ${ONE_SERVER}. Calls per verb stay constant (list: 2 per machine); what grows is each project.one read (${
      payload.perMachine.toFixed(0)
    } B per machine, ${
      kib(payload.bytes)
    } at ${payload.machines}), which create reads twice and status only without its state file.`,
  );
  for (const n of notes) console.log(`note: ${n}`);
}

if (import.meta.main) await benchScale();
