/**
 * `deno task test`, the README's test command:
 *
 *     deno task test                 # the whole suite: deno test --allow-all --parallel tests/
 *     deno task test tests/unit/     # deno test --allow-all --parallel tests/unit/
 *
 * For the whole suite it first prepares the real-engine tests' engine and images (as
 * `deno task engine up`; the tests do it themselves otherwise). Deno's output and exit code
 * pass through unchanged. It always ends by releasing the engine — also on SIGINT/SIGTERM
 * and when the run exceeds TEST_TIMEOUT seconds (default 3600) — so the last run to end
 * lifts the network guard and stops a daemon we started (tests/engine/engine.ts).
 */
import { ensureEngine } from "../tests/engine/engine.ts";
import { ensureImages } from "../tests/engine/images.ts";
import { bounded, releasingEngine } from "./engine_session.ts";

const ENGINE_UP_MS = 900_000;
/** After a stop signal, how long `deno test` may take to end before SIGKILL. */
const GRACE_MS = 30_000;

const log = (line: string) => console.error(line);

async function prepareEngine(): Promise<void> {
  try {
    await bounded(
      (async () => {
        const engine = await ensureEngine(log);
        await ensureImages(engine, log);
        log(`test: engine ${engine.host}${engine.ours ? " (started by this project)" : ""}`);
      })(),
      ENGINE_UP_MS,
      `not ready within ${ENGINE_UP_MS / 1000} s`,
    );
  } catch (e) {
    log(`test: engine set-up failed (${(e as Error).message}); the real-engine tests say why`);
  }
}

/** Sends `signal`, then SIGKILL when the child has not ended within GRACE_MS. */
async function stop(child: Deno.ChildProcess, signal: Deno.Signal): Promise<void> {
  const kill = (s: Deno.Signal) => {
    try {
      child.kill(s);
    } catch { /* already ended */ }
  };
  kill(signal);
  await bounded(child.status, GRACE_MS, "").catch(() => kill("SIGKILL"));
  await child.status;
}

async function main(args: string[]): Promise<number> {
  const timeoutS = Number(Deno.env.get("TEST_TIMEOUT") ?? 3600);
  if (!(timeoutS > 0)) {
    log("test: TEST_TIMEOUT must be a number of seconds, e.g. TEST_TIMEOUT=3600");
    return 2;
  }
  let child: Deno.ChildProcess | undefined;
  return await releasingEngine(async () => {
    if (!args.length) await prepareEngine();
    const tests = new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--parallel", ...(args.length ? args : ["tests/"])],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    child = tests;
    const timer = setTimeout(() => {
      log(`test: still running after TEST_TIMEOUT=${timeoutS} s: stopping it`);
      stop(tests, "SIGTERM");
    }, timeoutS * 1000);
    try {
      const status = await tests.status;
      return status.success ? 0 : (status.code || 1);
    } finally {
      clearTimeout(timer);
    }
  }, { interrupt: async (signal) => child && await stop(child, signal), log });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
