/**
 * The real Docker engine of the real-engine tests, for contributors and CI:
 *
 *     deno task engine up      # install docker.io + docker-compose (apt) when absent, use a
 *                              # daemon that answers or start one, build the test images
 *     deno task engine down    # lift the network guard; stop dockerd only if we started it
 */
import { ensureEngine, run, stopEngine } from "../tests/engine/engine.ts";
import { ensureImages } from "../tests/engine/images.ts";

const log = (line: string) => console.error(line);

async function installWhenMissing(): Promise<void> {
  const have = async (cmd: string) => (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
  const missing = [];
  if (!(await have("dockerd"))) missing.push("docker.io");
  if (!(await have("docker-compose"))) missing.push("docker-compose");
  if (!(await have("iptables"))) missing.push("iptables");
  if (!missing.length) return;
  if (Deno.uid() !== 0) throw new Error(`install ${missing.join(" ")} (needs root)`);
  log(`engine: installing ${missing.join(" ")} from apt`);
  const env = { DEBIAN_FRONTEND: "noninteractive", PATH: Deno.env.get("PATH") ?? "" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", ...missing]]) {
    const r = await run("apt-get", args, { env, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`apt-get ${args[0]} failed: ${r.stderr.slice(-1000)}`);
  }
}

async function main(verb: string | undefined): Promise<number> {
  switch (verb) {
    case "up": {
      await installWhenMissing();
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
