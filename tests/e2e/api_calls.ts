/**
 * Counting a verb's Dokploy API calls the way the round-trip budget counts them (issue
 * 10): every request of the run, except the polls that wait for Dokploy's deploy or for
 * the machine's boot — their number follows how long those take, not the provider.
 * Shared by tests/e2e/round_trips_test.ts and `deno task bench`.
 */
import type { RecordedRequest } from "../emulator/mod.ts";
import type { RunOptions, RunResult, World } from "./harness.ts";

/** Deploy polls (deployment.allByCompose) and boot-watch polls (the machine's containers). */
const WAIT_POLLS = new Set(["deployment.allByCompose", "docker.getContainersByAppNameMatch"]);
/** After these, the provider waits for a deploy or a boot: what it then polls is not counted. */
const WAIT_STARTS = new Set(["compose.deploy", "compose.start"]);

/** The procedures of one run's requests that count, in order. */
export function countedCalls(requests: readonly RecordedRequest[]): string[] {
  let waiting = false;
  const counted: string[] = [];
  for (const { procedure } of requests) {
    if (waiting && WAIT_POLLS.has(procedure)) continue;
    counted.push(procedure);
    if (WAIT_STARTS.has(procedure)) waiting = true;
  }
  return counted;
}

export interface CountedRun {
  result: RunResult;
  /** The counted procedures, in the order they were called. */
  calls: string[];
}

/** Runs `verb` through the real entry point and counts its calls (nothing else may call meanwhile). */
export async function runCounted(
  w: World,
  verb: string,
  machineId: string,
  opts?: RunOptions,
): Promise<CountedRun> {
  const before = w.emu.requests.length;
  const result = await w.run(verb, machineId, opts);
  return { result, calls: countedCalls(w.emu.requests.slice(before)) };
}
