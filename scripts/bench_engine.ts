/**
 * Real-engine figures for `deno task bench`: the provider's create/stop/start against
 * the floor — the same compose file brought up with a raw `docker compose` (the same v1
 * adapter the emulator uses) plus ssh until it answers. Alternated pair by pair. Then the
 * shared image cache's pulls, cold and warm, against a pull with no cache (bench_cache.ts);
 * prebuilds: the next machine's `up` from the first one's prebuild (bench_prebuild.ts);
 * the agent cache: DevPod's agent download, first and next machine (bench_agent.ts).
 */
import { join } from "node:path";
import { readState } from "../lib/machine/state.ts";
import { sshArgv } from "../lib/ssh/argv.ts";
import { dockerCompose } from "../tests/emulator/machine/compose_command.ts";
import { SERVER_PATH as PATH } from "../tests/emulator/machine/runtime.ts";
import type { Engine } from "../tests/engine/engine.ts";
import type { TestImages } from "../tests/engine/images.ts";
import { startWorld } from "../tests/e2e/harness.ts";
import { benchAgentCache } from "./bench_agent.ts";
import { benchImageCache } from "./bench_cache.ts";
import { benchPrebuilds } from "./bench_prebuild.ts";
import { median, time } from "./bench_stats.ts";

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;

/** ssh `true` until it succeeds: the least any "ready" can mean. */
async function sshUntilReady(argv: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await new Deno.Command("ssh", { args: [...argv, "true"], stderr: "null" }).output();
    if (r.success) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("raw machine did not answer ssh");
}

export async function benchRealEngine(
  engine: Engine,
  images: TestImages,
  rounds: number,
  entry: string,
  row: Row,
): Promise<void> {
  const w = await startWorld({
    engine,
    entry,
    options: { MACHINE_IMAGE: images.machine, INACTIVITY_TIMEOUT: "0", READY_TIMEOUT: "120s" },
  });
  const scratch = await Deno.makeTempDir({ prefix: "devpod-bench-raw-" });
  const compose = (dir: string, project: string, args: string[]) =>
    dockerCompose(engine, ["-p", project, ...args], { cwd: dir, env: { PATH } });
  const times = { create: [[], []], stop: [[], []], start: [[], []] } as Record<
    string,
    [number[], number[]]
  >;
  try {
    for (let i = 0; i < rounds; i++) {
      const id = `bench-eng-${i}`;
      times.create[0].push(await time(() => w.run("create", id)));
      times.stop[0].push(await time(() => w.run("stop", id)));
      times.start[0].push(await time(() => w.run("start", id)));

      // The same file, .env, key and port, brought up without the provider.
      const state = (await readState(w.folder(id)))!;
      const dir = join(scratch, `raw-${i}`);
      await Deno.mkdir(dir);
      const code = join(w.emu.dataDir, "compose", state.appName, "code");
      for (const f of ["docker-compose.yml", ".env"]) {
        await Deno.copyFile(join(code, f), join(dir, f));
      }
      for (const f of ["id_ed25519", "known_hosts"]) {
        await Deno.copyFile(join(w.folder(id), f), join(dir, f));
      }
      const ssh = sshArgv({
        host: state.sshHost,
        port: state.sshPort,
        user: state.sshUser,
        identityFile: join(dir, "id_ed25519"),
        knownHostsFile: join(dir, "known_hosts"),
      });
      await w.run("delete", id);

      const project = `raw-${i}`;
      const up = async (extra: string[]) => {
        const r = await compose(dir, project, ["-f", "docker-compose.yml", "up", "-d", ...extra]);
        if (r.code !== 0) throw new Error(r.output);
        await sshUntilReady(ssh);
      };
      times.create[1].push(await time(() => up(["--remove-orphans"])));
      times.stop[1].push(await time(() => compose(dir, project, ["stop"])));
      times.start[1].push(await time(() => up([])));
      await compose(dir, project, ["down", "--volumes"]);
    }
  } finally {
    await w.close();
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  for (
    const [verb, label, floor] of [
      ["create", "real engine: create → SSH ready", "compose up -d + ssh"],
      ["stop", "real engine: stop", "compose stop"],
      ["start", "real engine: start → SSH ready", "compose up -d + ssh"],
    ]
  ) {
    const [ours, raw] = times[verb].map(median);
    row(label, s(ours), `${floor} ${s(raw)}`, `${(ours / raw).toFixed(2)}×`, "floor + API");
  }
  try {
    await benchImageCache(engine, images, Math.min(rounds, 3), entry, row);
  } catch (e) {
    console.log(`  image cache: skipped (${(e as Error).message})`);
  }
  try {
    console.log(`  ${await benchPrebuilds(engine, images, Math.min(rounds, 3), entry, row)}`);
  } catch (e) {
    console.log(`  prebuilds: skipped (${(e as Error).message})`);
  }
  try {
    console.log(`  ${await benchAgentCache(engine, images, Math.min(rounds, 3), entry, row)}`);
  } catch (e) {
    console.log(`  agent cache: skipped (${(e as Error).message})`);
  }
}
