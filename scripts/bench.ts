/**
 * `deno task bench`: performance figures against the emulator and a real sshd, and on a
 * real Docker engine when one can be had, as ratios measured in one run (design §9).
 * Prints a table and the API calls per verb; no assertions — the claims in the README
 * come from here, not from timed tests (the call budgets are tested: round_trips_test.ts).
 */
import { join } from "node:path";
import { readState } from "../lib/machine/state.ts";
import { sshArgv } from "../lib/ssh/argv.ts";
import { runCounted } from "../tests/e2e/api_calls.ts";
import { startWorld, type World } from "../tests/e2e/harness.ts";
import { ensureEngine } from "../tests/engine/engine.ts";
import { ensureImages } from "../tests/engine/images.ts";
import { benchBackups } from "./bench_backup.ts";
import { benchBrokenCache } from "./bench_broken_cache.ts";
import { benchRealEngine } from "./bench_engine.ts";
import { releasingEngine } from "./engine_session.ts";
import { benchScale } from "./bench_scale.ts";
import { median, time } from "./bench_stats.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 7);
const rows: string[][] = [];

/** Alternates the two, so machine load and caches weigh on both alike; medians. */
async function compare(
  n: number,
  ours: () => Promise<number>,
  baseline: () => Promise<number>,
): Promise<[number, number]> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < n; i++) {
    a.push(await ours());
    b.push(await baseline());
  }
  return [median(a), median(b)];
}

/** A process with piped stdout; env given = exactly that env (as DevPod would). */
function spawn(
  cmd: string,
  args: string[],
  env: Record<string, string> | undefined,
  stdin: "null" | "piped",
) {
  return new Deno.Command(cmd, {
    args,
    env,
    clearEnv: env !== undefined,
    stdin,
    stdout: "piped",
    stderr: "null",
  })
    .spawn();
}

/** Time until the first stdout byte of a spawned process. */
async function firstByte(cmd: string, args: string[], env?: Record<string, string>) {
  const t = performance.now();
  const child = spawn(cmd, args, env, "null");
  const reader = child.stdout.getReader();
  await reader.read();
  const first = performance.now() - t;
  while (!(await reader.read()).done) { /* drain */ }
  await child.status;
  return first;
}

async function throughput(
  cmd: string,
  args: string[],
  bytes: number,
  env?: Record<string, string>,
) {
  const child = spawn(cmd, args, env, "piped");
  const t = performance.now();
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  const writing = (async () => {
    const w = child.stdin.getWriter();
    for (let sent = 0; sent < bytes; sent += chunk.length) await w.write(chunk);
    await w.close();
  })();
  let received = 0;
  for await (const c of child.stdout) received += c.length;
  await writing;
  await child.status;
  const secs = (performance.now() - t) / 1000;
  return received / secs / (1024 * 1024);
}

function row(name: string, ours: string, baseline: string, ratio: string, target: string) {
  rows.push([name, ours, baseline, ratio, target]);
  console.log(`  ${name}: ${ours} vs ${baseline} (${ratio})`);
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

async function main() {
  console.log(`bench: ${ROUNDS} rounds per figure (median)`);
  // Users run a `deno compile` binary; its local stand-in is one bundled file.
  const bundle = join(await Deno.makeTempDir({ prefix: "devpod-bench-" }), "provider.js");
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "-o", bundle, "mod.ts"],
  }).output();
  if (!built.success) throw new Error(new TextDecoder().decode(built.stderr));
  const w = await startWorld({
    deployDelayMs: 1000,
    entry: bundle,
    options: { INACTIVITY_TIMEOUT: "0" },
  });
  const id = "bench-0a1b2";
  let callsLine = "calls: not measured";
  try {
    // create: provider overhead beyond Dokploy's deploy and the machine's own boot.
    const createMs = await time(() => w.run("create", id));
    const state = (await readState(w.folder(id)))!;
    const [dep] = await emulatorApi(w, "deployment.allByCompose", { composeId: state.composeId });
    const deployMs = Date.parse(dep.finishedAt) - Date.parse(dep.startedAt);
    const bootMs = await bootTime(w, state.composeId, state.appName);
    row(
      "create → ready",
      ms(createMs),
      `deploy ${ms(deployMs)} + boot ${ms(bootMs)}`,
      `overhead ${ms(createMs - deployMs - bootMs)}`,
      "overhead ≤ 1000 ms",
    );
    callsLine = await callsPerVerb(w);

    // status: wall time vs one raw HTTP round trip from a fresh process.
    const { calls } = await runCounted(w, "status", id);

    const rawProbe = join(w.root, "raw.ts");
    await Deno.writeTextFile(
      rawProbe,
      `const r = await fetch(Deno.args[0], { headers: { "x-api-key": Deno.args[1] } }); console.log(await r.text());`,
    );
    const rawFetch = () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          rawProbe,
          `${w.emu.url}/api/compose.one?composeId=${state.composeId}`,
          w.emu.token,
        ],
        stdout: "null",
        stderr: "null",
      }).output();
    const [statusMs, rawMs] = await compare(
      ROUNDS,
      () => time(() => w.run("status", id)),
      () => time(rawFetch),
    );
    row(
      "status",
      `${ms(statusMs)}, ${calls.length} API calls`,
      `raw fetch process ${ms(rawMs)}`,
      `${(statusMs / rawMs).toFixed(2)}×`,
      "≤ 1.5×, ≤ 2 calls",
    );

    // command: time to first byte and bulk throughput vs raw ssh to the same sshd.
    const target = {
      host: state.sshHost,
      port: state.sshPort,
      user: state.sshUser,
      identityFile: join(w.folder(id), "id_ed25519"),
      knownHostsFile: join(w.folder(id), "known_hosts"),
    };
    const env = { ...w.env(id), COMMAND: "echo x" };
    const raw = sshArgv(target);
    const [oursTtfb, rawTtfb] = await compare(
      ROUNDS,
      () => firstByte(Deno.execPath(), ["run", "-A", "--quiet", bundle, "command"], env),
      () => firstByte("ssh", [...raw, "echo x"]),
    );
    row(
      "command: time to first byte",
      ms(oursTtfb),
      `raw ssh ${ms(rawTtfb)}`,
      `${(oursTtfb / rawTtfb).toFixed(2)}×`,
      "≤ 1.2×",
    );
    const bytes = 64 * 1024 * 1024;
    const [oursTp, rawTp] = await compare(
      3,
      () =>
        throughput(Deno.execPath(), ["run", "-A", "--quiet", bundle, "command"], bytes, {
          ...env,
          COMMAND: "cat",
        }),
      () => throughput("ssh", [...raw, "cat"], bytes),
    );
    row(
      "command: throughput (64 MiB echo)",
      `${oursTp.toFixed(0)} MiB/s`,
      `raw ssh ${rawTp.toFixed(0)} MiB/s`,
      `${(oursTp / rawTp).toFixed(2)}×`,
      "≥ 0.9×",
    );

    // 8 concurrent tunnels on one machine.
    const par = await time(() =>
      Promise.all(
        Array.from({ length: 8 }, () => w.run("command", id, { command: "sleep 1; echo ok" })),
      )
    );
    row(
      "8 concurrent tunnels",
      ms(par),
      "1 tunnel ≥ 1000 ms",
      `${(par / 1000).toFixed(2)}× of one`,
      "all 8 succeed",
    );

    // A seed-like lookup: scan the port range for a listener instead of reading state.
    const range = w.env(id).SSH_PORT_RANGE.split("-").map(Number);
    const scanMs = await time(async () => {
      for (let p = range[0]; p <= range[1]; p++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: p })).close();
        } catch { /* closed */ }
      }
    });
    row(
      "machine lookup",
      "state file + 2 API calls",
      `seed-like port scan of ${range[1] - range[0] + 1} ports ${ms(scanMs)}`,
      "scan grows with the range and can pick a stranger",
      "no scan",
    );
    await w.run("delete", id);
  } finally {
    await w.close();
  }

  // A shared image cache that cannot be pulled must not tax every create (issue 18).
  await benchBrokenCache(ROUNDS, bundle, row);

  // The same verbs on a real Docker engine, against raw docker compose + ssh.
  try {
    const engine = await ensureEngine();
    const images = await ensureImages(engine);
    await benchRealEngine(engine, images, Math.min(ROUNDS, 5), bundle, row);
    await benchBackups(engine, images, Math.min(ROUNDS, 3), bundle, row).catch((e) => {
      console.log(`  backups: skipped (${(e as Error).message})`);
    });
  } catch (e) {
    console.log(`  real engine: skipped (${(e as Error).message})`);
  }
  console.log("\n| figure | ours | baseline | ratio | target |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log(`\n${callsLine}`);

  // Scale on paper: 3 servers × 20 machines, deploy queues, calls and payload at 60.
  console.log();
  await benchScale(bundle);
}

/** A GET of the emulated Dokploy API, for figures the provider does not report. */
async function emulatorApi(w: World, procedure: string, params: Record<string, string>) {
  const res = await fetch(`${w.emu.url}/api/${procedure}?${new URLSearchParams(params)}`, {
    headers: { "x-api-key": w.emu.token },
  });
  if (!res.ok) throw new Error(`${procedure}: ${res.status}`);
  return await res.json();
}

/** The machine's boot as its bootstrap measured it ("ready in 0.42s": container start → sshd up). */
async function bootTime(w: World, composeId: string, appName: string): Promise<number> {
  const log: string = await emulatorApi(w, "compose.readLogs", {
    composeId,
    containerId: `${appName}-machine-1`,
    tail: "200",
  });
  const ready = /\bready in (\d+\.\d+)s/.exec(log);
  if (!ready) throw new Error("the machine's log has no 'ready in' line");
  return Number(ready[1]) * 1000;
}

/**
 * API calls per verb on a machine in an existing project, counted as the round-trip
 * test counts them (tests/e2e/api_calls.ts: deploy and boot polls left out).
 */
async function callsPerVerb(w: World): Promise<string> {
  const id = "bench-calls-0a1b2";
  const calls: Record<string, number> = {};
  for (const verb of ["create", "stop", "start", "status", "delete"]) {
    const { result, calls: made } = await runCounted(w, verb, id);
    if (result.code !== 0) throw new Error(`${verb} failed: ${result.stderr}`);
    calls[verb] = made.length;
  }
  const { create, start, stop, status } = calls;
  return `calls create=${create} start=${start} stop=${stop} delete=${calls.delete} status=${status}`;
}

// The engine goes as it came: released at the end (also on Ctrl-C), torn down if last.
if (import.meta.main) Deno.exit(await releasingEngine(() => main().then(() => 0)));
