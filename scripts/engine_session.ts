/**
 * Runs a command that may use the test engine, then releases it: what the run created on
 * the engine is removed (tests/engine/ledger.ts: a killed test never cleans up after
 * itself, and on a daemon we did not start its machines would run on), then the engine's
 * last user lifts the network guard and stops a daemon we started (tests/engine/engine.ts).
 * Also on SIGINT/SIGTERM, once `interrupt` has ended what the command started. Every step
 * is bounded, so neither a stuck lock nor a slow daemon keeps the process from ending.
 */
import { dockerCli, releaseEngine } from "../tests/engine/engine.ts";
import { LEDGER_ENV, sweepLedger } from "../tests/engine/ledger.ts";

const RELEASE_MS = 120_000;
const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;

/** `promise`, or a rejection with `message` after `ms`. */
export function bounded<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export async function releasingEngine(
  main: () => Promise<number>,
  opts: {
    /** Ends what `main` started (a child process), before the engine goes. */
    interrupt?: (signal: Deno.Signal) => Promise<void>;
    log?: (line: string) => void;
  } = {},
): Promise<number> {
  const log = opts.log ?? ((line: string) => console.error(line));
  // This run's own: what its processes create on the engine is noted there.
  const ledger = await Deno.makeTempDir({ prefix: "devpod-test-ledger-" });
  Deno.env.set(LEDGER_ENV, ledger);
  let released: Promise<void> | undefined;
  const release = () =>
    released ??= bounded(
      sweep(ledger, log).then(() => releaseEngine(log)),
      RELEASE_MS,
      `not done within ${RELEASE_MS / 1000} s`,
    ).then(() => {}, (e) => {
      log(`engine: tear-down failed (${(e as Error).message}): run \`deno task engine down\``);
    });
  const handlers = Object.entries(SIGNALS).map(([name, number]) => {
    const signal = name as Deno.Signal;
    const handler = async () => {
      log(`${signal}: stopping, then releasing the test engine`);
      await opts.interrupt?.(signal).catch(() => {});
      await release();
      Deno.exit(128 + number);
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  try {
    return await main();
  } finally {
    await release();
    for (const remove of handlers) remove();
  }
}

/** Removes what the run left on the engine (nothing, when its tests cleaned up). */
async function sweep(ledger: string, log: (line: string) => void): Promise<void> {
  const left = await sweepLedger(ledger, dockerCli());
  const total = left.containers + left.volumes + left.networks;
  if (total) {
    log(
      `engine: removed what this run left: ${left.containers} containers, ${left.volumes} volumes, ${left.networks} networks`,
    );
  }
  await Deno.remove(ledger, { recursive: true }).catch(() => {});
}
