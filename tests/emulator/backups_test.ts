/**
 * Volume backups as Dokploy v0.30.2 runs them (dokploy-api.md §9), on the host runtime:
 * destinations, backup rows, runs with their logs, retention, turnOff, the schedule, the
 * restore stream, and the backup guard service. Real rclone against a real s3rver; the
 * volumes are directories tarred by the host's GNU tar.
 */
import assert from "node:assert/strict";
import {
  backUpOnce,
  containers,
  createBackup,
  destinationInput,
  restore,
  runLog,
  runs,
} from "./backup_support.ts";
import { type Emulator, startEmulator } from "./mod.ts";
import { type S3Server, startS3 } from "./s3.ts";
import { call, machineCompose, machineFixture, ok, waitFor } from "./test_support.ts";

const asRoot = { sanitizeResources: false, sanitizeOps: false, ignore: Deno.uid() !== 0 };
const noSanitize = { sanitizeResources: false, sanitizeOps: false };

interface World {
  emu: Emulator;
  s3: S3Server;
  destinationId: string;
  composeId: string;
  appName: string;
  /** The machine's home volume directory. */
  home: string;
}

/** s3rver, an emulator and one deployed machine (with a home volume), then `fn`. */
async function withWorld(
  fn: (w: World) => Promise<void>,
  opts: { composeFile?: (port: number, key: string) => string; serverId?: string } = {},
) {
  const s3 = await startS3({ buckets: ["devpod-backups"] });
  const emu = await startEmulator({
    deployDelayMs: 10,
    servers: opts.serverId ? [{ serverId: opts.serverId, name: "Remote" }] : [],
  });
  const keys = await Deno.makeTempDir();
  try {
    const fx = await machineFixture(emu, keys, "backups");
    const composeFile = opts.composeFile?.(fx.port, fx.client.publicKey) ??
      machineCompose({ port: fx.port, authorizedKey: fx.client.publicKey });
    const c = await ok(emu, "POST", "compose.create", {
      name: "machine",
      environmentId: fx.environmentId,
      composeType: "docker-compose",
      sourceType: "raw",
      composeFile,
      ...(opts.serverId ? { serverId: opts.serverId } : {}),
    });
    await ok(emu, "POST", "compose.deploy", { composeId: c.composeId });
    await emu.waitIdle(60_000);
    const snap = await emu.snapshot();
    assert.equal(snap.composes[0].composeStatus, "done");
    const d = await ok(emu, "POST", "destination.create", destinationInput(s3));
    const appName = String(c.appName);
    await fn({
      emu,
      s3,
      destinationId: String(d.destinationId),
      composeId: String(c.composeId),
      appName,
      home: `${emu.dataDir}/volumes/${appName}_home`,
    });
  } finally {
    await emu.close();
    await s3.close();
    await Deno.remove(keys, { recursive: true });
  }
}

/** `tar cf - .` of a directory, as the backup's `tar cvf` makes it (same tar, same root). */
async function tarOf(dir: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", { args: ["cf", "-", "."], cwd: dir, stdout: "piped" })
    .output();
  assert.ok(out.success);
  return out.stdout;
}

const sha = async (b: Uint8Array) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>)))
    .map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test(
  "destinations: CRUD as Dokploy answers it, testConnection runs rclone ls",
  noSanitize,
  async () => {
    const s3 = await startS3({ buckets: ["devpod-backups"] });
    const emu = await startEmulator();
    try {
      const created = await ok(emu, "POST", "destination.create", destinationInput(s3));
      assert.equal(created.provider, "Other");
      assert.deepEqual(created.additionalFlags, []);
      assert.equal(created.organizationId, "emulator-org-0000000001");
      // Secrets come back as stored: one/all do not redact them.
      const one = await ok(emu, "GET", "destination.one", { destinationId: created.destinationId });
      assert.equal(one.secretAccessKey, s3.secretKey);
      assert.deepEqual((await ok<unknown[]>(emu, "GET", "destination.all")).length, 1);

      const updated = await ok(emu, "POST", "destination.update", {
        ...destinationInput(s3, {
          name: "renamed",
          additionalFlags: ["--s3-sign-accept-encoding=false"],
        }),
        destinationId: created.destinationId,
      });
      assert.equal(updated.name, "renamed");
      const missing = await call(emu, "POST", "destination.update", {
        ...destinationInput(s3),
        destinationId: "nope",
      });
      assert.equal(missing.status, 400); // the router turns "not found" into BAD_REQUEST
      assert.equal((missing.body as { message: string }).message, "Destination not found");
      const badFlag = await call(emu, "POST", "destination.create", {
        ...destinationInput(s3),
        additionalFlags: ["--ok", "rm -rf"],
      });
      assert.equal(badFlag.status, 400);

      // A reachable bucket: 200 with an empty body.
      const good = await call(emu, "POST", "destination.testConnection", destinationInput(s3));
      assert.deepEqual(good, { status: 200, body: null });
      // No such bucket, and no such endpoint: 400 with the command and rclone's stderr.
      const noBucket = await call(
        emu,
        "POST",
        "destination.testConnection",
        destinationInput(s3, { bucket: "absent" }),
      );
      assert.equal(noBucket.status, 400);
      const msg = (noBucket.body as { message: string }).message;
      assert.match(
        msg,
        /^Command execution failed: Command failed: rclone ls --s3-provider=Other /,
      );
      assert.match(
        msg,
        / --retries 1 --low-level-retries 1 --timeout 10s --contimeout 5s \\:s3\\:absent\n/,
      );
      assert.match(msg, /directory not found/);
      const port = s3.endpoint.split(":").pop();
      await s3.close();
      const down = await call(emu, "POST", "destination.testConnection", destinationInput(s3));
      assert.equal(down.status, 400);
      assert.match(
        (down.body as { message: string }).message,
        new RegExp(`127\\.0\\.0\\.1:${port}.*connection refused`),
      );

      const removed = await ok(emu, "POST", "destination.remove", {
        destinationId: created.destinationId,
      });
      assert.equal(removed.destinationId, created.destinationId);
      const gone = await call(emu, "GET", "destination.one", {
        destinationId: created.destinationId,
      });
      assert.deepEqual([gone.status, (gone.body as { message: string }).message], [
        404,
        "Destination not found",
      ]);
    } finally {
      await emu.close();
      await s3.close();
    }
  },
);

Deno.test(
  "backup: runManually uploads Dokploy's key, the volume's tar byte for byte; runs, logs, retention",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName, home }) => {
      await Deno.writeTextFile(`${home}/notes.txt`, "hello backup\n");
      await Deno.mkdir(`${home}/.config/app`, { recursive: true });
      const blob = crypto.getRandomValues(new Uint8Array(60_000));
      await Deno.writeFile(`${home}/.config/app/blob.bin`, blob);
      const vb = await createBackup(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
        prefix: "/devpod/",
        keepLatestCount: 2,
      });
      assert.match(vb.appName, /^volumeBackup-[a-z-]+-[a-z0-9]{6}$/);
      const row = await ok(emu, "GET", "volumeBackups.one", { volumeBackupId: vb.volumeBackupId });
      assert.equal((row.destination as Record<string, unknown>).accessKey, undefined); // redacted here
      assert.equal((row.compose as { appName: string }).appName, appName);

      const expected = await tarOf(home);
      const answer = await call(emu, "POST", "volumeBackups.runManually", {
        volumeBackupId: vb.volumeBackupId,
      });
      assert.deepEqual(answer, { status: 200, body: null }); // waited, answers nothing
      const [key] = await s3.objects();
      assert.match(
        key,
        new RegExp(
          `^${appName}_machine/devpod/${appName}_home-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d-\\d{3}Z\\.tar$`,
        ),
      );
      assert.equal(await sha(await s3.read(key)), await sha(expected));

      const [first] = await runs(emu, vb.volumeBackupId);
      assert.equal(first.status, "done");
      assert.equal(first.title, "Volume Backup");
      assert.match(
        first.logPath,
        new RegExp(
          `/volume-backups/${vb.appName}/${vb.appName}-\\d{4}-\\d\\d-\\d\\d:\\d\\d:\\d\\d:\\d\\d\\.log$`,
        ),
      );
      const log = await runLog(emu, first.deploymentId);
      const lines = log.split("\n");
      assert.equal(lines[0], "Initializing volume backup");
      for (
        const l of [
          `Volume name: ${appName}_home`,
          `Backup file name: ${key.split("/").pop()}`,
          "Turning off volume backup: No",
          "./notes.txt",
          "./.config/app/blob.bin",
          "Volume backup done ✅",
          "Upload to S3 done ✅",
          "Local backup file cleaned up ✅",
        ]
      ) assert.ok(lines.includes(l), `log has ${JSON.stringify(l)}:\n${log}`);

      // Two more runs: retention keeps the newest 2 (by name, newest first).
      for (let i = 0; i < 2; i++) {
        await ok(emu, "POST", "volumeBackups.runManually", { volumeBackupId: vb.volumeBackupId });
      }
      const kept = await s3.objects();
      assert.equal(kept.length, 2);
      assert.ok(!kept.includes(key), "the oldest went");
      const all = await runs(emu, vb.volumeBackupId);
      assert.deepEqual(all.map((r) => r.status), ["done", "done", "done"]);
      assert.ok(
        all[0].deploymentId !== first.deploymentId && all[2].deploymentId === first.deploymentId,
      );

      // The row goes with its runs (FK cascade); an unknown id is a 404.
      assert.deepEqual(
        await call(emu, "POST", "volumeBackups.delete", { volumeBackupId: vb.volumeBackupId }),
        { status: 200, body: null },
      );
      assert.deepEqual(await runs(emu, vb.volumeBackupId), []);
      const gone = await call(emu, "POST", "volumeBackups.runManually", {
        volumeBackupId: vb.volumeBackupId,
      });
      assert.deepEqual([gone.status, (gone.body as { message: string }).message], [
        404,
        "Volume backup not found",
      ]);
    });
  },
);

Deno.test(
  "backup: a volume changing under tar fails the run (GNU tar exit 1 under set -e)",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName, home }) => {
      await Deno.writeFile(`${home}/big.log`, new Uint8Array(40 * 1024 * 1024));
      const writer = new Deno.Command("/bin/sh", {
        args: ["-c", "while :; do echo x >> big.log; done"],
        cwd: home,
      }).spawn();
      try {
        const { vb, run, log } = await backUpOnce(emu, {
          destinationId,
          composeId,
          volumeName: `${appName}_home`,
        });
        assert.equal(run.status, "error", log);
        assert.match(log, /tar: \.\/big\.log: file changed as we read it/);
        assert.ok(!log.includes("Volume backup done ✅"));
        assert.deepEqual(await s3.objects(), []);
        // The failed run's local tar is removed (`rm -rf <dir>/*.tar`).
        const dir = `${emu.dataDir}/volume-backups/${vb.appName}`;
        assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tar")), []);
      } finally {
        writer.kill("SIGKILL");
        await writer.status;
      }
    });
  },
);

Deno.test(
  "backup turnOff: the running machine is stopped for the tar and started again",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName, home }) => {
      await Deno.writeTextFile(`${home}/a.txt`, "a\n");
      const before = (await containers(emu, appName))[0];
      const { run, log } = await backUpOnce(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
        turnOff: true,
      });
      assert.equal(run.status, "done", log);
      const lines = log.split("\n");
      const at = (l: string) => lines.indexOf(l);
      assert.ok(at("Volume backup lock acquired") > 0, log);
      // docker stop / docker start print the id they were given: the machine's.
      assert.ok(at("Stopping compose container") < at(before.containerId), log);
      assert.ok(at(before.containerId) < at("Turning off volume backup: Yes"), log);
      assert.ok(at("Starting compose container") < lines.lastIndexOf(before.containerId), log);
      assert.ok(at("Compose container started") < at("Upload to S3 done ✅"), log);
      assert.equal((await s3.objects()).length, 1);
      // Started again: running, with a fresh start in its container log.
      const after = (await containers(emu, appName))[0];
      assert.equal(after.state, "running");
      const containerLog = await Deno.readTextFile(
        `${emu.dataDir}/machines/${appName}/container.log`,
      );
      assert.equal(containerLog.match(/\[emulator\] .* starting /g)?.length, 2);
    });
  },
);

Deno.test(
  "backup turnOff with the machine stopped: `docker stop` of nothing fails it before the tar",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName }) => {
      await ok(emu, "POST", "compose.stop", { composeId });
      const { run, log } = await backUpOnce(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
        turnOff: true,
      });
      assert.equal(run.status, "error");
      // v0.30.2 runs the stop under the lock wrapper's `set -e`: the script ends right there.
      assert.match(log, /Stopping compose container\n"docker stop" requires at least 1 argument\./);
      assert.ok(!log.includes("Turning off volume backup"), log);
      assert.deepEqual(await s3.objects(), []);
    });
  },
);

Deno.test(
  "backup.listBackupFiles: folder and term from `search`, Dokploy's entries",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName }) => {
      await backUpOnce(emu, { destinationId, composeId, volumeName: `${appName}_home` });
      const [key] = await s3.objects();
      const list = (search: string) =>
        ok<{ Path: string; Name: string; Size: number; IsDir: boolean }[]>(
          emu,
          "GET",
          "backup.listBackupFiles",
          { destinationId, search },
        );
      // No '/': the bucket's root, filtered (case-insensitive) by the whole search.
      const root = await list("_MACHINE");
      assert.deepEqual(root.map((f) => [f.Path, f.IsDir]), [[`${appName}_machine`, true]]);
      assert.deepEqual(await list("no-such-folder"), []);
      // An empty search is absent over REST: never a listing of the whole root.
      const empty = await call(emu, "GET", "backup.listBackupFiles", { destinationId, search: "" });
      assert.equal(empty.status, 400);
      assert.equal((empty.body as { message: string }).message, "Input validation failed");
      const folder = await list(`${appName}_machine/devpod/`);
      assert.deepEqual(folder.map((f) => f.Path), [key]);
      assert.equal(folder[0].Name, key.split("/").pop());
      assert.equal(folder[0].IsDir, false);
      assert.ok(folder[0].Size >= 10240);
      assert.deepEqual(
        (await list(`${appName}_machine/devpod/${appName.toUpperCase()}_HOME`)).length,
        1,
      );
      assert.deepEqual(await list(`${appName}_machine/devpod/nothing-like-it`), []);
      // S3 has no folders: an absent one lists empty. A bucket that is not there fails the
      // call, with rclone's stderr discarded (2>/dev/null). (An endpoint out of reach fails
      // too, but only after rclone's default retries: about 80 s.)
      assert.deepEqual(await list("absent/"), []);
      const other = await ok(
        emu,
        "POST",
        "destination.create",
        destinationInput(s3, { bucket: "absent" }),
      );
      const down = await call(emu, "GET", "backup.listBackupFiles", {
        destinationId: other.destinationId,
        search: "devpod-",
      });
      assert.equal(down.status, 400);
      assert.match(
        (down.body as { message: string }).message,
        /^Command execution failed: Command failed: rclone lsjson .* --no-mimetype --no-modtime 2>\/dev\/null\n$/,
      );
    });
  },
);

Deno.test(
  "restore stream: a new volume, a volume in use (aborted), a freed one",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName, home }) => {
      await Deno.writeTextFile(`${home}/keep.txt`, "restored bytes\n");
      await backUpOnce(emu, { destinationId, composeId, volumeName: `${appName}_home` });
      const [key] = await s3.objects();
      const input = { backupFileName: key, destinationId, id: composeId, serviceType: "compose" };

      const fresh = await restore(emu, { ...input, volumeName: "restored-elsewhere" });
      assert.equal(fresh.status, 200);
      assert.equal(fresh.contentType, "text/event-stream");
      assert.deepEqual(fresh.events[0], { event: "connected", data: "{}" });
      assert.deepEqual(fresh.events.at(-1), { event: "return", data: "" });
      assert.ok(fresh.text.startsWith("event: connected\ndata: {}\n\n\ndata: "));
      const said = fresh.values.join(""); // the script's chunks, as they came
      assert.equal(fresh.values[0], "🚀 Starting volume restore process...");
      assert.match(said, /Volume exists: 0\nVolume doesn't exist, proceeding with direct restore/);
      assert.match(said, /\.\/keep\.txt/);
      assert.equal(fresh.values.at(-2), "✅ Volume restore completed successfully!");
      assert.equal(
        await Deno.readTextFile(`${emu.dataDir}/volumes/restored-elsewhere/keep.txt`),
        "restored bytes\n",
      );

      // The machine's own home: its container uses it, so the restore stops and says why.
      const busy = await restore(emu, { ...input, volumeName: `${appName}_home` });
      const busyText = busy.values.join("");
      assert.match(busyText, /⚠️ {2}WARNING: Cannot restore volume as it is currently in use!/);
      assert.match(
        busyText,
        new RegExp(`🐳 Container: ${appName}-machine-1 \\([0-9a-f]{12}\\)\n\\s+Status: running`),
      );
      assert.match(busyText, new RegExp(`Type: Docker Compose \\(${appName}\\)`));
      assert.match(busyText, /❌ Volume restore aborted - volume is in use/);
      assert.equal(busy.values.at(-1), "❌ Volume restore failed!");
      assert.deepEqual(busy.events.at(-1), { event: "return", data: "" });

      // Stopped is not enough ("including stopped ones"); removed is.
      await ok(emu, "POST", "compose.stop", { composeId });
      await Deno.writeTextFile(`${home}/keep.txt`, "changed after the backup\n");
      const stopped = await restore(emu, { ...input, volumeName: `${appName}_home` });
      assert.match(stopped.values.join(""), /Status: exited/);
      const [container] = await containers(emu, appName);
      assert.deepEqual(
        await call(emu, "POST", "docker.removeContainer", { containerId: container.containerId }),
        { status: 200, body: null },
      );
      const freed = await restore(emu, { ...input, volumeName: `${appName}_home` });
      assert.match(freed.values.join(""), /Volume exists but no containers are using it/);
      assert.equal(freed.values.at(-2), "✅ Volume restore completed successfully!");
      assert.equal(await Deno.readTextFile(`${home}/keep.txt`), "restored bytes\n");
    });
  },
);

Deno.test(
  "restore stream: auth, input and a missing destination end it with serialized-error",
  noSanitize,
  async () => {
    const emu = await startEmulator();
    try {
      const input = {
        backupFileName: "a/b.tar",
        destinationId: "nope",
        volumeName: "v",
        id: "c",
        serviceType: "compose",
      };
      const expectError = (
        r: Awaited<ReturnType<typeof restore>>,
        code: string,
        status: number,
      ) => {
        assert.equal(r.status, 200);
        assert.deepEqual(r.events.map((e) => e.event), ["connected", "serialized-error"]);
        const shape = JSON.parse(r.events[1].data).json;
        assert.equal(shape.data.code, code);
        assert.equal(shape.data.httpStatus, status);
        assert.equal(shape.data.path, "volumeBackups.restoreVolumeBackupWithLogs");
        return shape;
      };
      expectError(await restore(emu, input, {}), "UNAUTHORIZED", 401);
      const bad = expectError(
        await restore(emu, { ...input, volumeName: "-x" }),
        "BAD_REQUEST",
        400,
      );
      assert.ok(bad.data.zodError.fieldErrors.volumeName);
      const missing = expectError(await restore(emu, input), "NOT_FOUND", 404);
      assert.equal(missing.message, "Destination not found");
      // Not on the REST face.
      assert.equal(
        (await call(emu, "GET", "volumeBackups.restoreVolumeBackupWithLogs", input)).status,
        404,
      );
    } finally {
      await emu.close();
    }
  },
);

Deno.test(
  "schedule: a 6-field cron runs by itself; delete keeps its job until a restart",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName }) => {
      const never = await createBackup(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
        cronExpression: "every night please",
        enabled: true,
      });
      const vb = await createBackup(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
        cronExpression: "*/2 * * * * *",
        enabled: true,
        keepLatestCount: 50,
      });
      const done = await waitFor(
        "a scheduled run",
        async () => (await runs(emu, vb.volumeBackupId)).find((r) => r.status === "done"),
        30_000,
        200,
      );
      assert.equal(done.title, "Volume Backup");
      assert.ok((await s3.objects()).length >= 1);
      const jobs = (await emu.snapshot()).backupJobs;
      // A bad expression is stored and registered, and simply never fires.
      assert.deepEqual(
        jobs.find((j) => j.volumeBackupId === never.volumeBackupId),
        {
          volumeBackupId: never.volumeBackupId,
          cronExpression: "every night please",
          scheduled: false,
          runs: 0,
          nextRun: null,
        },
      );
      assert.deepEqual(await runs(emu, never.volumeBackupId), []);

      // Deleted: the row and its runs go, its job keeps firing (on nothing).
      await ok(emu, "POST", "volumeBackups.delete", { volumeBackupId: vb.volumeBackupId });
      const firedAtDelete = (await emu.snapshot()).backupJobs.find((j) =>
        j.volumeBackupId === vb.volumeBackupId
      )!.runs;
      await waitFor(
        "the deleted row's job firing again",
        async () =>
          ((await emu.snapshot()).backupJobs.find((j) => j.volumeBackupId === vb.volumeBackupId)
            ?.runs ?? 0) >
            firedAtDelete,
        30_000,
        200,
      );
      assert.deepEqual(await runs(emu, vb.volumeBackupId), []);

      // A restart drops every job; the boot registers the enabled rows only.
      const live = await createBackup(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
        cronExpression: "0 0 1 1 *",
        enabled: true,
      });
      await emu.restart({ downMs: 200 });
      const after = (await emu.snapshot()).backupJobs.map((j) => j.volumeBackupId).sort();
      assert.deepEqual(after, [never.volumeBackupId, live.volumeBackupId].sort());
      // update with enabled:false cancels; a full replace (required fields) is needed.
      await ok(emu, "POST", "volumeBackups.update", {
        volumeBackupId: live.volumeBackupId,
        name: "home backup",
        volumeName: `${appName}_home`,
        prefix: "devpod",
        cronExpression: "0 0 1 1 *",
        destinationId,
        enabled: false,
      });
      assert.ok(
        !(await emu.snapshot()).backupJobs.some((j) => j.volumeBackupId === live.volumeBackupId),
      );
      const partial = await call(emu, "POST", "volumeBackups.update", {
        volumeBackupId: live.volumeBackupId,
        enabled: true,
      });
      assert.equal(partial.status, 400);
    });
  },
);

Deno.test(
  "backup on a remote server: runs there; unreachable, runManually answers false",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName }) => {
      const { vb, run } = await backUpOnce(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
      });
      assert.equal(run.status, "done");
      assert.equal((await s3.objects()).length, 1);
      // The log is on the server; deployment.readLogs reads it on the Dokploy host.
      assert.equal(await runLog(emu, run.deploymentId), "");
      const onServer = `${emu.dataDir}/servers/srv-r${run.logPath.slice(emu.dataDir.length)}`;
      assert.match(await Deno.readTextFile(onServer), /Upload to S3 done ✅/);

      await emu.setServer("srv-r", { reachable: false });
      const answer = await call(emu, "POST", "volumeBackups.runManually", {
        volumeBackupId: vb.volumeBackupId,
      });
      assert.deepEqual(answer, { status: 200, body: false });
      const [failed] = await runs(emu, vb.volumeBackupId);
      assert.equal(failed.status, "error");
      assert.equal(failed.logPath, "");
      assert.equal(
        failed.errorMessage,
        "An error have occurred: SSH connection error: connect ECONNREFUSED 127.0.0.2:22",
      );
    }, { serverId: "srv-r" });
  },
);

Deno.test(
  "backup guard (host runtime): a real process, ro home, no network, SIGTERM on stop",
  asRoot,
  async () => {
    const guard = [
      "trap 'echo got TERM; exit 0' TERM",
      "echo net: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')",
      "if touch /guard/home/x 2>/dev/null; then echo home: rw; else echo home: ro; fi",
      "echo state > /guard/state/alive && echo state: rw",
      "while :; do sleep 0.2; done",
    ].join("\n");
    const composeFile = (port: number, key: string) =>
      machineCompose({ port, authorizedKey: key }).replace(
        "volumes:\n  home: {}",
        [
          "  guard:",
          "    image: debian:bookworm-slim",
          `    entrypoint: ["/bin/sh", "-c", ${JSON.stringify(guard)}]`,
          "    network_mode: none",
          "    stop_grace_period: 5s",
          "    restart: unless-stopped",
          "    labels:",
          "      dev.devpod.role: backup-guard",
          "    volumes:",
          "      - home:/guard/home:ro",
          "      - guard:/guard/state",
          "volumes:",
          "  home: {}",
          "  guard: {}",
        ].join("\n"),
      );
    await withWorld(async ({ emu, composeId, appName }) => {
      const listed = await containers(emu, appName);
      assert.deepEqual(listed.map((c) => [c.name, c.state]).sort(), [
        [`${appName}-guard-1`, "running"],
        [`${appName}-machine-1`, "running"],
      ]);
      const logs = () =>
        ok<string>(emu, "GET", "compose.readLogs", {
          composeId,
          containerId: `${appName}-guard-1`,
          tail: 50,
        });
      const text = await waitFor("guard output", async () => {
        const t = await logs();
        return t.includes("state:") && t;
      });
      assert.match(text, /net: lo\n/);
      assert.match(text, /home: ro\n/);
      assert.match(text, /state: rw\n/);
      assert.equal(
        await Deno.readTextFile(`${emu.dataDir}/volumes/${appName}_guard/alive`),
        "state\n",
      );
      // compose.stop: SIGTERM reaches its trap (PID 1 of its namespace).
      await ok(emu, "POST", "compose.stop", { composeId });
      const log = await Deno.readTextFile(`${emu.dataDir}/machines/${appName}/guard/container.log`);
      assert.match(log, /got TERM/);
      const stopped = await containers(emu, appName);
      assert.ok(stopped.every((c) => c.state === "exited"), JSON.stringify(stopped));
    }, { composeFile });
  },
);

Deno.test(
  "restore stream: past 1 MiB of `tar xvf` listing, node's exec kills it and the restore fails",
  asRoot,
  async () => {
    await withWorld(async ({ emu, s3, destinationId, composeId, appName, home }) => {
      // ~6500 names of ~200 characters: a 1.3 MB listing.
      const made = await new Deno.Command("sh", {
        args: [
          "-c",
          `mkdir d && cd d && seq 1 6500 | sed 's/^/${"n".repeat(190)}-/' | xargs touch`,
        ],
        cwd: home,
      }).output();
      assert.ok(made.success);
      const { run } = await backUpOnce(emu, {
        destinationId,
        composeId,
        volumeName: `${appName}_home`,
      });
      assert.equal(run.status, "done"); // the backup's listing goes to its log, unlimited
      const [key] = await s3.objects();
      const r = await restore(emu, {
        backupFileName: key,
        destinationId,
        volumeName: "restored-big",
        id: composeId,
        serviceType: "compose",
      });
      assert.equal(r.values.at(-1), "❌ Volume restore failed!");
      assert.ok(!r.values.includes("✅ Volume restore completed successfully!"));
      // The host runtime's tar is cut off with the pipe: part of the volume arrived.
      const arrived = [...Deno.readDirSync(`${emu.dataDir}/volumes/restored-big/d`)].length;
      assert.ok(arrived > 0 && arrived < 6500, `${arrived} files restored`);
    });
  },
);
