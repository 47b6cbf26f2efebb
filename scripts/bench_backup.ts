/**
 * Backup and restore figures for `deno task bench` (issue 17): a machine whose home holds
 * 200 MiB, backed up with `backup <machine>` and put back with `restore --latest`, against
 * the floor — the same volume tarred by hand (`docker run … tar`, as Dokploy does) and
 * uploaded with `rclone copyto`, then downloaded and untarred into a fresh volume. Same S3
 * server on loopback, same engine, alternated pair by pair.
 */
import { join } from "node:path";
import { readState } from "../lib/machine/state.ts";
import { cacheEnv, runProvider, startWorld } from "../tests/e2e/harness.ts";
import { destinationInput } from "../tests/emulator/backup_support.ts";
import { rcloneFlags, shellQuote } from "../tests/emulator/backups/commands.ts";
import { startS3 } from "../tests/emulator/s3.ts";
import { ok } from "../tests/emulator/test_support.ts";
import type { Engine } from "../tests/engine/engine.ts";
import { docker, type TestImages } from "../tests/engine/images.ts";
import { run } from "../tests/engine/run.ts";
import { median, time } from "./bench_stats.ts";

type Row = (name: string, ours: string, baseline: string, ratio: string, target: string) => void;

const HOME_MIB = 200;
const BUCKET = "bench-bucket";
const LONG_MS = 900_000;
/** A ticker outside the home: its longest gap is how long a backup paused the machine. */
const TICKER = "nohup sh -c 'echo $$ > /tmp/bench-ticker.pid; " +
  "while :; do date +%s%N >> /tmp/bench-ticks; sleep 0.02; done' >/dev/null 2>&1 &";
/** Stops the ticker; its longest gap in ms. */
const GAPS = "kill $(cat /tmp/bench-ticker.pid); " +
  "awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { print m / 1e6 }' /tmp/bench-ticks; " +
  "rm -f /tmp/bench-ticks /tmp/bench-ticker.pid";

const asText = (r: { code: number; stdoutText: string; stderr: string }) => ({
  code: r.code,
  stdout: r.stdoutText.trim(),
  stderr: r.stderr,
});

async function must(what: string, r: Promise<{ code: number; stdout: string; stderr: string }>) {
  const out = await r;
  if (out.code !== 0) throw new Error(`${what}: ${out.stderr.trim().split("\n").pop()}`);
  return out.stdout;
}

/** `tar ARGS` in Dokploy's `ubuntu` image with the volume at /volume_data, the dir at /backup. */
function tarIn(engine: Engine, images: TestImages, volume: string, dir: string, args: string[]) {
  return docker(engine, [
    "run",
    "--rm",
    "-v",
    `${volume}:/volume_data`,
    "-v",
    `${dir}:/backup`,
    images.ubuntu,
    "tar",
    ...args,
  ], { timeoutMs: LONG_MS });
}

export async function benchBackups(
  engine: Engine,
  images: TestImages,
  rounds: number,
  entry: string,
  row: Row,
): Promise<void> {
  const s3 = await startS3({ buckets: ["bench-backups"] });
  const w = await startWorld({
    engine,
    entry,
    options: {
      MACHINE_IMAGE: images.machine,
      INACTIVITY_TIMEOUT: "0",
      READY_TIMEOUT: "180s",
      BACKUP_DESTINATION: BUCKET,
      // Each restore adds a safety copy: keep them all, so the chosen one stays.
      BACKUP_KEEP: String(2 * rounds + 1),
    },
  });
  const scratch = await Deno.makeTempDir({ prefix: "devpod-bench-backup-" });
  const id = "bench-backup";
  const times = { backup: [[], []], restore: [[], []] } as Record<string, [number[], number[]]>;
  let sizeBytes = 0;
  const pauses: number[] = [];
  try {
    const destination = destinationInput(s3, { name: BUCKET });
    await ok(w.emu, "POST", "destination.create", destination);
    const human = async (args: string[]) => {
      const r = await runProvider(args, w.env("unused"), { entry, timeoutMs: LONG_MS });
      if (r.code !== 0) throw new Error(`${args[0]}: ${r.stderr.trim().split("\n").pop()}`);
    };
    if ((await w.run("create", id)).code !== 0) throw new Error("create failed");
    const filled = await w.run("command", id, {
      command: `head -c ${HOME_MIB}M /dev/urandom > /home/devpod/data.bin`,
      timeoutMs: 300_000,
    });
    if (filled.code !== 0) throw new Error(`filling the home: ${filled.stderr}`);
    const home = `${(await readState(w.folder(id)))!.appName}_home`;
    // As Dokploy runs it: flags quoted for a shell line, a plain environment (Debian's
    // rclone 1.60 fails on AWS_CA_BUNDLE).
    const flags = rcloneFlags(destination).join(" ");
    const rclone = (args: string[]) =>
      run("sh", ["-c", `rclone ${args.map(shellQuote).join(" ")} ${flags}`], {
        timeoutMs: LONG_MS,
        clearEnv: true,
        env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: scratch, ...cacheEnv(scratch) },
      });
    const tar = join(scratch, "floor.tar");
    const remote = `:s3:${s3.bucket}/floor/floor.tar`;

    for (let i = 0; i < rounds; i++) {
      await must("the ticker", w.run("command", id, { command: TICKER }).then(asText));
      times.backup[0].push(await time(() => human(["backup", id])));
      pauses.push(
        Number(await must("its gaps", w.run("command", id, { command: GAPS }).then(asText))),
      );
      times.backup[1].push(
        await time(async () => {
          await must(
            "floor tar",
            tarIn(engine, images, home, scratch, [
              "cf",
              "/backup/floor.tar",
              "-C",
              "/volume_data",
              ".",
            ]),
          );
          await must("floor upload", rclone(["copyto", tar, remote]));
        }),
      );
      sizeBytes = (await Deno.stat(tar)).size;
      await Deno.remove(tar);

      times.restore[0].push(await time(() => human(["restore", id, "--latest"])));
      const fresh = `bench-floor-restore-${i}`;
      times.restore[1].push(
        await time(async () => {
          await must("floor download", rclone(["copyto", remote, tar]));
          await must(
            "floor untar",
            tarIn(engine, images, fresh, scratch, [
              "xpf",
              "/backup/floor.tar",
              "-C",
              "/volume_data",
            ]),
          );
        }),
      );
      await docker(engine, ["volume", "rm", "-f", fresh]);
      await Deno.remove(tar);
    }
    await w.run("delete", id);
  } finally {
    await w.close();
    await s3.close();
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const [backup, backupFloor] = times.backup.map(median);
  const [restore, restoreFloor] = times.restore.map(median);
  row(
    `backup of a ${HOME_MIB} MiB home (${(sizeBytes / 2 ** 20).toFixed(0)} MiB tar)`,
    s(backup),
    `tar + rclone copyto ${s(backupFloor)}`,
    ratio(backup, backupFloor),
    "floor + one copy",
  );
  row(
    "longest pause of the machine's processes during a backup",
    `${median(pauses).toFixed(0)} ms`,
    "-",
    "-",
    "writers frozen only for the copy",
  );
  // A restore first backs up the home it replaces (its undo), then stops, restores, starts.
  row(
    "restore of it, safety backup included",
    s(restore),
    `rclone copyto + untar ${s(restoreFloor)}`,
    ratio(restore, restoreFloor),
    "backup + floor + stop/start",
  );
  row(
    "restore of it, less its safety backup",
    s(restore - backup),
    `rclone copyto + untar ${s(restoreFloor)}`,
    ratio(restore - backup, restoreFloor),
    "floor + stop/start",
  );
}

// Alone: `deno run -A scripts/bench_backup.ts` (the bench runs it after the engine figures).
if (import.meta.main) {
  const { ensureEngine } = await import("../tests/engine/engine.ts");
  const { ensureImages } = await import("../tests/engine/images.ts");
  const { releasingEngine } = await import("./engine_session.ts");
  const mod = new URL("../mod.ts", import.meta.url).pathname;
  Deno.exit(
    await releasingEngine(async () => {
      const engine = await ensureEngine();
      const images = await ensureImages(engine);
      const rows: string[][] = [];
      const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
      await benchBackups(engine, images, rounds, mod, (...r) => rows.push(r));
      for (const r of rows) console.log(`| ${r.join(" | ")} |`);
      return 0;
    }),
  );
}
