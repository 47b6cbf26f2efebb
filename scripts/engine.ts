/**
 * The real Docker engine of the real-engine tests, for contributors and CI:
 *
 *     deno task engine up      # install docker.io + docker-compose (apt) when absent, use a
 *                              # daemon that answers or start one, build the test images
 *     deno task engine down    # lift the network guard; stop dockerd only if we started it
 *                              # (also while a test run still uses it)
 *     deno task engine status  # what of ours is on this host; exit 1 when anything is
 *
 * `deno task test` and `deno task bench` end with the same tear-down as `down`, once no
 * other run uses the engine; the data root and the built images stay for the next run.
 */
import { engineLeftovers, ensureEngine, stopEngine } from "../tests/engine/engine.ts";
import { GUARD_CHAIN } from "../tests/engine/guard.ts";
import { ensureImages } from "../tests/engine/images.ts";
import { describeUser } from "../tests/engine/users.ts";

const log = (line: string) => console.error(line);

/** One line per thing of ours still on the host; none when the host is as it was. */
export async function leftoverLines(): Promise<string[]> {
  const left = await engineLeftovers();
  return [
    ...left.daemons.map((pid) => `dockerd started by this project is running (pid ${pid})`),
    ...left.rules.map((rule) => `iptables rule of ours: ${rule}`),
    ...(left.chain ? [`iptables chain of ours: ${GUARD_CHAIN}`] : []),
    ...left.users.map((pid) => `still used by ${describeUser(pid)}`),
  ];
}

async function main(verb: string | undefined): Promise<number> {
  switch (verb) {
    case "up": {
      const engine = await ensureEngine(log);
      const images = await ensureImages(engine, log);
      log(`engine: ${engine.host}${engine.ours ? " (started by this project)" : ""}`);
      console.log(JSON.stringify({ ...engine, images }));
      return 0;
    }
    case "down":
      await stopEngine(log);
      return 0;
    case "status": {
      const lines = await leftoverLines();
      for (const line of lines) console.log(`engine: ${line}`);
      if (!lines.length) console.log("engine: nothing of ours on this host");
      return lines.length ? 1 : 0;
    }
    default:
      console.error("usage: deno task engine up|down|status");
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args[0]));
  } catch (e) {
    console.error(`engine: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
