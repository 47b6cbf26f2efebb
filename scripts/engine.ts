/**
 * The real Docker engine of the real-engine tests, for contributors and CI:
 *
 *     deno task engine up      # install docker.io + docker-compose (apt) when absent, use a
 *                              # daemon that answers or start one, build the test images
 *     deno task engine down    # lift the network guard; stop dockerd only if we started it
 */
import { ensureEngine, stopEngine } from "../tests/engine/engine.ts";
import { ensureImages } from "../tests/engine/images.ts";

const log = (line: string) => console.error(line);

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
    default:
      console.error("usage: deno task engine up|down");
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
