/**
 * Backups and restore end to end on the real engine: the provider (`deno run mod.ts`, as
 * DevPod runs it) registers Dokploy volume backups, Dokploy's own commands (docker stop of
 * the guard, `docker run … tar`, rclone) upload to a real S3 server on loopback, and a
 * restore through Dokploy's subscription puts the home back into another machine.
 *
 * Ends with one figure line:
 *   backups: N taken, M restored byte-identical, K failed as expected, L files lost
 */
import assert from "node:assert/strict";
import { destinationInput } from "../emulator/backup_support.ts";
import { type S3Server, startS3 } from "../emulator/s3.ts";
import { ok } from "../emulator/test_support.ts";
import { randomBytes, runProvider, sha256Hex } from "../e2e/harness.ts";
import { type EngineWorld, eventually, startEngineWorld } from "./world.ts";

const RUN = Deno.pid.toString(36);
const m = (name: string) => `bak-${name}-${RUN}`;
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false, ignore: Deno.uid() !== 0 };
const BUCKET = "e2e-bucket";
const KEEP = 2;
/** Small files beside one large one: "files lost" counts what a restore did not bring back. */
const TREE_FILES = 150;
const figures = { taken: 0, identical: 0, failedAsExpected: 0, lost: 0 };
/** Through the emulator's transport, which refuses an empty GET value as Dokploy does. */
let restoredAfterDelete = false;

async function sh(w: EngineWorld, id: string, command: string, stdin?: Uint8Array) {
  const r = await w.run("command", id, { command, stdin });
  assert.equal(r.code, 0, `command ${JSON.stringify(command)} on ${id} failed:\n${r.stderr}`);
  return r.stdoutText;
}

async function verb(w: EngineWorld, verbName: string, id: string) {
  const r = await w.run(verbName, id);
  assert.equal(r.code, 0, `${verbName} ${id} failed:\n${r.stderr}`);
  return r;
}

const status = async (w: EngineWorld, id: string) =>
  (await verb(w, "status", id)).stdoutText.trim();

/** A human verb (backup, restore, list), with the world's options. */
const human = (w: EngineWorld, args: string[], extra: Record<string, string> = {}) =>
  runProvider(args, w.env("unused", extra), { timeoutMs: 600_000 });

/** sha256 of every file under the home's tree/ and of data.bin, one "hash  path" a line. */
const FINGERPRINT = "cd /home/devpod && find tree data.bin -type f | sort | xargs sha256sum";

interface BackupRow {
  machineId: string;
  key: string;
  sizeBytes: number;
  complete: boolean;
  machine: "live" | "deleted";
}

async function backupsOf(w: EngineWorld, machineId: string): Promise<BackupRow[]> {
  const r = await human(w, ["list", "--backups", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdoutText).backups as BackupRow[]).filter((b) => b.machineId === machineId);
}

async function takeBackup(w: EngineWorld, id: string): Promise<string> {
  const r = await human(w, ["backup", id]);
  assert.equal(r.code, 0, `backup ${id} failed:\n${r.stderr}`);
  const match = r.stdoutText.match(/^backed up machine \S+ in [0-9.]+ s: [0-9.]+ \S+, (\S+)\n$/);
  assert.ok(match, `backup's report: ${r.stdoutText}`);
  figures.taken++;
  return match[1];
}

let world: EngineWorld;
let s3: S3Server;

Deno.test({
  name: "real engine backups: set-up (engine, S3 server, emulator, destinations)",
  ...NO_SANITIZE,
  async fn() {
    // The root listed as s3rver lists it (no folders): finding a deleted machine's backups
    // must not need a root listing, which only real S3 answers.
    s3 = await startS3({ buckets: ["devpod-backups"], rootAsS3rver: true });
    world = await startEngineWorld({ BACKUP_DESTINATION: BUCKET, BACKUP_KEEP: String(KEEP) });
    await ok(world.emu, "POST", "destination.create", destinationInput(s3, { name: BUCKET }));
    // A port nothing listens on: the bucket of a server that is down.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    await ok(
      world.emu,
      "POST",
      "destination.create",
      destinationInput(s3, {
        name: "down-bucket",
        endpoint: `http://127.0.0.1:${port}`,
        // rclone's own retries would take minutes to give up on a refused connection.
        additionalFlags: ["--retries=1", "--low-level-retries=1"],
      }),
    );
  },
});

Deno.test({
  name: "real engine backups: init checks BACKUP_DESTINATION in one line",
  ...NO_SANITIZE,
  async fn() {
    const good = await world.run("init", "unused");
    assert.equal(good.code, 0, good.stderr);
    for (
      const [value, expected] of [
        ["down-bucket", /BACKUP_DESTINATION.*down-bucket/],
        ["no-such-bucket", /BACKUP_DESTINATION.*no-such-bucket.*e2e-bucket/],
      ] as const
    ) {
      const r = await world.run("init", "unused", { env: { BACKUP_DESTINATION: value } });
      assert.notEqual(r.code, 0, `init with BACKUP_DESTINATION=${value} passed`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], expected);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
      figures.failedAsExpected++;
    }
  },
});

Deno.test({
  name: "real engine backups: stopped, running and written-to machines back up consistently; " +
    "retention keeps BACKUP_KEEP; a restore after delete brings every file back",
  ...NO_SANITIZE,
  async fn() {
    const w = world;
    const [a, b, c, d] = [m("a"), m("b"), m("c"), m("d")];
    const data = randomBytes(4 << 20);
    await verb(w, "create", a);
    await sh(w, a, "cat > /home/devpod/data.bin", data);
    await sh(
      w,
      a,
      `mkdir -p /home/devpod/tree && cd /home/devpod/tree && ` +
        `i=0; while [ $i -lt ${TREE_FILES} ]; do echo "file $i of machine a" > f$i.txt; ` +
        `i=$((i + 1)); done`,
    );
    const fingerprint = await sh(w, a, FINGERPRINT);
    assert.equal(fingerprint.trim().split("\n").length, TREE_FILES + 1);
    assert.match(fingerprint, new RegExp(`^${await sha256Hex(data)}  data.bin$`, "m"));

    // Stopped: the backup succeeds and the machine stays stopped.
    await verb(w, "stop", a);
    assert.equal(await status(w, a), "Stopped");
    await takeBackup(w, a);
    assert.equal(await status(w, a), "Stopped", "a backup never starts a stopped machine");

    // Running, with a process appending lines: its writers are frozen for the copy and
    // thawed after; the machine is never stopped.
    await verb(w, "start", a);
    await eventually("a runs again", async () => (await status(w, a)) === "Running", 120_000);
    assert.equal(await sh(w, a, FINGERPRINT), fingerprint, "stop/start kept the home");
    await sh(
      w,
      a,
      "nohup sh -c 'i=0; while :; do i=$((i + 1)); " +
        `echo "line $i complete" >> /home/devpod/writer.log; done' >/dev/null 2>&1 &`,
    );
    await eventually(
      "the writer writes",
      async () => Number(await sh(w, a, "wc -l < /home/devpod/writer.log")) > 100,
      60_000,
    );
    await takeBackup(w, a);
    assert.equal(await status(w, a), "Running", "a backup never leaves a running machine stopped");
    const linesAfter = Number(await sh(w, a, "wc -l < /home/devpod/writer.log"));
    await eventually(
      "the writer runs on after the backup (thawed)",
      async () => Number(await sh(w, a, "wc -l < /home/devpod/writer.log")) > linesAfter,
      60_000,
    );

    // A third backup: retention keeps the newest BACKUP_KEEP.
    const newest = await takeBackup(w, a);
    const kept = await backupsOf(w, a);
    assert.equal(kept.length, KEEP, JSON.stringify(kept));
    assert.ok(kept.every((k) => k.complete && k.sizeBytes > data.length));
    assert.equal(kept[0].key, newest, "newest first");

    // list, describe and doctor show the last backup.
    const table = await human(w, ["list"]);
    assert.match(table.stdoutText, /^MACHINE .* LAST BACKUP/m);
    assert.match(table.stdoutText, new RegExp(`^${a} .* ok (<1|\\d+)m ago, [0-9.]+ MiB`, "m"));
    const described = await verb(w, "describe", a);
    assert.match(
      described.stdoutText,
      new RegExp(`^last backup: ok (<1|\\d+)m ago, .*\\(${newest}\\); schedule "`, "m"),
    );
    const doctor = await human(w, ["doctor"]);
    assert.match(doctor.stdoutText, /✔ backup destination\s+e2e-bucket: Dokploy reaches bucket/);
    assert.match(doctor.stdoutText, new RegExp(`✔ backup ${a}\\s+last backup ok`));

    // `devpod delete`: the schedule goes, the backups stay.
    await verb(w, "delete", a);
    const afterDelete = await backupsOf(w, a);
    assert.deepEqual(afterDelete.map((k) => k.key), kept.map((k) => k.key));
    assert.ok(afterDelete.every((k) => k.machine === "deleted"));
    const snapshot = await w.emu.snapshot();
    assert.ok(!snapshot.composes.some((x) => x.name.includes(a)), "a's service is gone");

    // Into a new machine; a third machine's home is not touched.
    // d backs up to a bucket that is down: its run fails, and doctor says so.
    await Promise.all([
      verb(w, "create", b),
      // c is made before backups were on: its next start registers them.
      w.run("create", c, { env: { BACKUP_DESTINATION: "" } }).then((r) =>
        assert.equal(r.code, 0, r.stderr)
      ),
      w.run("create", d, { env: { BACKUP_DESTINATION: "down-bucket" } }).then((r) =>
        assert.equal(r.code, 0, r.stderr)
      ),
    ]);
    const failing = await human(w, ["backup", d]);
    assert.notEqual(failing.code, 0, "a backup to a bucket that is down failed");
    const why = failing.stderr.trim().split("\n").pop()!;
    assert.match(why, new RegExp(`the backup of machine ${d} failed: .*connection refused`));
    figures.failedAsExpected++;
    const flagged = await human(w, ["doctor"]);
    assert.notEqual(flagged.code, 0, "doctor fails on a failed backup");
    assert.match(
      flagged.stdoutText,
      new RegExp(`✘ backup ${d}\\s+last backup failed .*try backup ${d}`),
    );
    await sh(w, b, "echo 'b before the restore' > /home/devpod/b-own.txt");
    await sh(w, c, "echo 'c keeps this' > /home/devpod/c-marker.txt");
    assert.doesNotMatch((await verb(w, "describe", c)).stdoutText, /^last backup:/m);
    await verb(w, "start", c);
    assert.match(
      (await verb(w, "describe", c)).stdoutText,
      /^last backup: none yet \(\d+ \d+ \* \* \*\); schedule/m,
      "start registered c's backups",
    );
    assert.match(await sh(w, c, "cat /home/devpod/c-marker.txt"), /c keeps this/);
    const cBefore = await sh(w, c, "sha256sum /home/devpod/c-marker.txt");

    const unnamed = await human(w, ["restore", a, "--into", b]);
    assert.notEqual(unnamed.code, 0, "a restore needs --latest or --from");
    assert.match(unnamed.stderr.trim(), /^[^\n]*--latest[^\n]*--from[^\n]*$/);
    figures.failedAsExpected++;
    assert.match(await sh(w, b, "cat /home/devpod/b-own.txt"), /b before the restore/);

    const restored = await human(w, ["restore", a, "--latest", "--into", b]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(
      restored.stdoutText,
      new RegExp(
        `^restored ${newest} .* into machine ${b} .*its previous home is backed up as \\S+`,
      ),
    );
    figures.taken++; // the safety copy of b's home
    await eventually("b runs again", async () => (await status(w, b)) === "Running", 120_000);
    const got = await sh(w, b, FINGERPRINT);
    const want = new Set(fingerprint.trim().split("\n"));
    const have = new Set(got.trim().split("\n"));
    figures.lost = [...want].filter((line) => !have.has(line)).length;
    assert.equal(figures.lost, 0, `missing or changed after the restore:\n${got}`);
    assert.equal(got, fingerprint);
    figures.identical++;
    restoredAfterDelete = true;
    // The home is the backup's, as named: b's own file is gone (and in its safety copy).
    assert.equal(await sh(w, b, "test -e /home/devpod/b-own.txt && echo yes || echo no"), "no\n");
    // The writer's file: only whole lines, as a frozen copy has them.
    const log = await sh(w, b, "cat /home/devpod/writer.log");
    assert.ok(log.endsWith("complete\n"), `a torn last line: ${JSON.stringify(log.slice(-40))}`);
    assert.ok(log.split("\n").slice(0, -1).every((l, i) => l === `line ${i + 1} complete`));
    const manifest = JSON.parse(await sh(w, b, "cat /home/devpod/.devpod-backup.json"));
    assert.equal(manifest.machineId, a);
    assert.equal(manifest.consistency, "frozen");
    assert.equal(manifest.copyStatus, 0);
    assert.equal(await sh(w, c, "sha256sum /home/devpod/c-marker.txt"), cBefore);

    // Delete removes every volume, the home Dokploy's restore made (without compose's
    // labels) too.
    const apps = await Promise.all(
      [b, c].map(async (id) =>
        JSON.parse(await Deno.readTextFile(`${w.folder(id)}/state.json`)).appName as string
      ),
    );
    await Promise.all([b, c, d].map((id) => verb(w, "delete", id)));
    const volumes = (await w.docker(["volume", "ls", "-q"])).stdout.split("\n");
    assert.deepEqual(volumes.filter((v) => apps.some((app) => v.startsWith(`${app}_`))), []);
  },
});

Deno.test({
  name: "real engine backups: tear-down, figure line",
  ...NO_SANITIZE,
  async fn() {
    await world?.close();
    await s3?.close();
    const f = figures;
    console.log(`stand-in: restore after delete: ${restoredAfterDelete ? "yes" : "no"}`);
    console.log(
      `backups: ${f.taken} taken, ${f.identical} restored byte-identical, ` +
        `${f.failedAsExpected} failed as expected, ${f.lost} files lost`,
    );
  },
});
