import assert from "node:assert/strict";
import YAML from "yaml";
import { parseBackupKey } from "../../lib/backup/bucket.ts";
import { backupFolder, hasBackupGuard } from "../../lib/backup/guard.ts";
import { removeBackupSchedule, syncBackupSchedule } from "../../lib/backup/register.ts";
import { backupIsCurrent } from "../../lib/backup/doctor.ts";
import type { LastBackup } from "../../lib/backup/inventory.ts";
import { restoreProblem } from "../../lib/backup/restore.ts";
import { cronProblem, periodMs, scheduleFor } from "../../lib/backup/schedule.ts";
import { loadConfig } from "../../lib/config.ts";
import { DokployApi } from "../../lib/dokploy/api.ts";
import { DokployClient, readServerSentEvents } from "../../lib/dokploy/client.ts";
import { ConfigError } from "../../lib/errors.ts";
import { renderComposeFile } from "../../lib/machine/compose.ts";
import type { MachineDeps } from "../../lib/machine/deps.ts";
import type { MachineState } from "../../lib/machine/state.ts";
import { MACHINE_SPEC, recordingLog } from "./support.ts";

const BASE = { DOKPLOY_SERVER_URL: "http://dokploy.test", DOKPLOY_API_TOKEN: "tok" };

Deno.test("BACKUP_SCHEDULE: cron checked field by field; nightly spreads machines over 02:00-04:59", () => {
  assert.equal(cronProblem("30 2 * * *"), null);
  assert.equal(cronProblem("*/5 * * * * *"), null, "node-schedule's seconds field");
  assert.equal(cronProblem("0 3 * * mon-fri"), null);
  assert.match(cronProblem("61 2 * * *")!, /minute field "61" is outside 0-59/);
  assert.match(cronProblem("0 3 * *")!, /must have 5 fields/);
  assert.match(cronProblem("0 25 * * *")!, /hour/);
  assert.match(cronProblem("0 3 * * */0")!, /step below 1/);
  const times = ["a", "b", "c", "ws-1", "ws-2"].map((id) => scheduleFor("nightly", id));
  for (const t of times) {
    const [min, hour] = t.split(" ").map(Number);
    assert.ok(hour >= 2 && hour <= 4 && min >= 0 && min < 60, t);
    assert.equal(cronProblem(t), null);
  }
  assert.ok(new Set(times).size > 1, "machines do not all back up at once");
  assert.equal(scheduleFor("nightly", "ws-1"), scheduleFor("NIGHTLY", "ws-1"), "stable");
  assert.equal(scheduleFor("15 1 * * *", "ws-1"), "15 1 * * *");
  assert.equal(periodMs("30 2 * * *"), 86_400_000);
  assert.equal(periodMs("0 3 * * 0"), 7 * 86_400_000);
  assert.equal(periodMs("*/5 * * * * *"), 3_600_000);
});

Deno.test("BACKUP_* options: off by default, each bad value named with its fix", () => {
  assert.equal(loadConfig(BASE).backup, null);
  assert.deepEqual(loadConfig({ ...BASE, BACKUP_DESTINATION: "s3 main" }).backup, {
    destination: "s3 main",
    schedule: "nightly",
    keep: 7,
  });
  const bad = (env: Record<string, string>, re: RegExp) =>
    assert.throws(() => loadConfig({ ...BASE, BACKUP_DESTINATION: "d", ...env }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, re);
      return true;
    });
  bad({ BACKUP_SCHEDULE: "every night" }, /^BACKUP_SCHEDULE .*set-options/);
  bad({ BACKUP_KEEP: "0" }, /^BACKUP_KEEP "0" must be a number of backups from 1 to 1000/);
  bad({ BACKUP_KEEP: "seven" }, /^BACKUP_KEEP/);
});

const spec = MACHINE_SPEC;

Deno.test("compose with backups: an unprivileged guard without network beside the machine", async () => {
  const file = renderComposeFile({ ...spec, backups: true });
  assert.ok(hasBackupGuard({ composeFile: file }));
  const doc = YAML.parse(file);
  const guard = doc.services.backup;
  assert.equal(guard.network_mode, "none");
  assert.equal(guard.privileged, undefined);
  assert.equal(guard.ports, undefined);
  assert.deepEqual(guard.volumes, ["home:/home/devpod:ro", "backup:/snapshot", "backupctl:/ctl"]);
  assert.equal(guard.labels["dev.devpod.role"], "backup-guard");
  assert.equal(guard.restart, "unless-stopped");
  assert.equal(guard.stop_grace_period, "30m");
  assert.ok(doc.volumes.backup && doc.volumes.backupctl);
  assert.ok(doc.services.machine.volumes.includes("backupctl:/run/devpod-backup"));
  assert.equal(doc.services.machine.environment.DEVPOD_BACKUP_CTL, "/run/devpod-backup");
  const script = guard.entrypoint[2].replaceAll("$$", "$");
  const out = await new Deno.Command("sh", { args: ["-n", "-c", script] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // Without backups the file is what it was: existing machines are not redeployed.
  const plain = YAML.parse(renderComposeFile(spec));
  assert.deepEqual(Object.keys(plain.services), ["machine"]);
  assert.deepEqual(Object.keys(plain.volumes), ["home", "docker"]);
  assert.ok(!hasBackupGuard({ composeFile: renderComposeFile(spec) }));
});

Deno.test("backup keys: Dokploy's names read back; an empty tar is no backup", () => {
  const app = "devpod-ws-1-abc123";
  const key = `${backupFolder(app, "ws-1")}${app}_backup-2026-12-03T12-18-10-292Z.tar`;
  assert.equal(key, `${app}_backup/ws-1/${app}_backup-2026-12-03T12-18-10-292Z.tar`);
  const f = parseBackupKey(key, 5_000_000)!;
  assert.equal(f.machineId, "ws-1");
  assert.equal(f.appName, app);
  assert.equal(f.takenAt, "2026-12-03T12:18:10.292Z");
  assert.equal(f.complete, true);
  assert.equal(parseBackupKey(key, 10_240)!.complete, false);
  assert.equal(
    parseBackupKey(`${app}_machine/ws-1/${app}_home-2026-12-03T12-18-10-292Z.tar`),
    null,
  );
  assert.equal(parseBackupKey("other/thing.tar"), null);
});

Deno.test("restore log: only a complete restore of one of our snapshots passes", () => {
  const ok = [
    "Volume exists, checking for containers using it (including stopped ones)...",
    "Volume exists but no containers are using it",
    "./",
    "./.devpod-backup.json",
    "./failed-build.log",
    "./error.log",
    "🚀 Starting volume restore process...📂 Backup File: m_backup/error-42/m_backup-1.tar",
    "Volume restore completed ✅",
    "✅ Volume restore completed successfully!",
  ];
  assert.equal(restoreProblem(ok), null);
  assert.match(
    restoreProblem(ok.filter((l) => !l.includes(".devpod-backup")))!,
    /no snapshot manifest/,
  );
  assert.match(
    restoreProblem([
      "⚠️  WARNING: Cannot restore volume as it is currently in use!",
      "❌ Volume restore aborted - volume is in use",
    ])!,
    /in use/,
  );
  assert.match(restoreProblem(["./", "./.devpod-backup.json"])!, /did not report/);
  assert.match(
    restoreProblem([...ok.slice(0, 4), "tar: ./big.bin: Cannot write: No space left on device"])!,
    /No space left/,
  );
  assert.match(
    restoreProblem(["2026/12/03 ERROR : m.tar: Failed to copy: connection refused", ...ok])!,
    /connection refused/,
  );
});

Deno.test("server-sent events: data, named events and pings, split anywhere", async () => {
  const text = 'event: connected\ndata: {}\n\n: comment\nid: 1\ndata: {"json":"a"}\n\n' +
    'event: ping\ndata: \n\ndata: {"json":"b"}\r\n\r\nevent: return\ndata: \n\n';
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 7) c.enqueue(bytes.subarray(i, i + 7));
      c.close();
    },
  });
  const events = [];
  for await (const e of readServerSentEvents(body)) events.push(e);
  assert.deepEqual(events, [
    { type: "connected", data: "{}" },
    { type: "message", data: '{"json":"a"}' },
    { type: "ping", data: "" },
    { type: "message", data: '{"json":"b"}' },
    { type: "return", data: "" },
  ]);
});

/** A Dokploy that knows destinations and volume backups, recording every call. */
function backupDokploy() {
  const calls: { procedure: string; body: unknown }[] = [];
  const rows: Record<string, unknown>[] = [];
  const fetchStub = (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const procedure = url.pathname.replace("/api/", "");
    const body = init?.body ? JSON.parse(String(init.body)) : Object.fromEntries(url.searchParams);
    calls.push({ procedure, body });
    let answer: unknown = true;
    switch (procedure) {
      case "destination.all":
        answer = [{ destinationId: "d1", name: "Main S3", bucket: "b", endpoint: "http://s3" }];
        break;
      case "volumeBackups.list":
        answer = rows.filter((r) => r.composeId === body.id);
        break;
      case "volumeBackups.create": {
        const row = { ...body, volumeBackupId: `vb${rows.length + 1}` };
        rows.push(row);
        answer = row;
        break;
      }
      case "volumeBackups.update":
        Object.assign(rows.find((r) => r.volumeBackupId === body.volumeBackupId)!, body);
        break;
      case "volumeBackups.delete":
        rows.splice(rows.findIndex((r) => r.volumeBackupId === body.volumeBackupId), 1);
        break;
    }
    return Promise.resolve(new Response(JSON.stringify(answer), { status: 200 }));
  };
  const client = new DokployClient({
    baseUrl: "http://dokploy.test",
    token: "tok",
    fetch: fetchStub as typeof fetch,
  });
  return { api: new DokployApi(client), calls, rows };
}

Deno.test("backup schedule: registered once, updated on a change, removed when off", async () => {
  const folder = await Deno.makeTempDir();
  try {
    const { api, calls, rows } = backupDokploy();
    const deps = (env: Record<string, string>): MachineDeps => ({
      api,
      config: loadConfig({ ...BASE, ...env }),
      machine: { machineId: "ws-1", machineFolder: folder },
      log: recordingLog().log,
      signal: new AbortController().signal,
      providerVersion: "v9",
    });
    const state = {
      composeId: "c1",
      appName: "devpod-ws-1-abc123",
      serverId: null,
    } as MachineState;
    const on = { BACKUP_DESTINATION: "main s3", BACKUP_KEEP: "3" };
    await syncBackupSchedule(deps(on), state);
    assert.deepEqual(calls.map((c) => c.procedure), [
      "destination.all",
      "volumeBackups.list",
      "volumeBackups.create",
    ]);
    assert.equal(rows.length, 1);
    assert.deepEqual({ ...rows[0], volumeBackupId: undefined }, {
      name: "devpod ws-1 home",
      volumeName: "devpod-ws-1-abc123_backup",
      prefix: "ws-1",
      cronExpression: scheduleFor("nightly", "ws-1"),
      destinationId: "d1",
      serviceName: "backup",
      composeId: "c1",
      serviceType: "compose",
      turnOff: true,
      keepLatestCount: 3,
      enabled: true,
      volumeBackupId: undefined,
    });
    assert.equal(state.backup?.volumeBackupId, "vb1");
    calls.length = 0;
    await syncBackupSchedule(deps(on), state);
    assert.equal(calls.length, 0, "unchanged options: no call");
    await syncBackupSchedule(deps({ ...on, BACKUP_KEEP: "5" }), state);
    assert.deepEqual(calls.map((c) => c.procedure), [
      "destination.all",
      "volumeBackups.list",
      "volumeBackups.update",
    ]);
    assert.equal(rows[0].keepLatestCount, 5);
    calls.length = 0;
    await syncBackupSchedule(deps({}), state);
    // Unscheduled before deleted: Dokploy's delete alone leaves the job running.
    assert.deepEqual(calls.map((c) => c.procedure), [
      "volumeBackups.list",
      "volumeBackups.update",
      "volumeBackups.delete",
    ]);
    assert.equal((calls[1].body as { enabled: boolean }).enabled, false);
    assert.equal(rows.length, 0);
    assert.equal(state.backup, undefined);
    await assert.rejects(
      () => syncBackupSchedule(deps({ BACKUP_DESTINATION: "nope" }), state),
      /BACKUP_DESTINATION "nope" is not a Dokploy destination; destinations: Main S3 \(d1\)/,
    );
    calls.length = 0;
    await removeBackupSchedule(deps({}), "c-gone");
    assert.deepEqual(calls.map((c) => c.procedure), ["volumeBackups.list"], "nothing to remove");
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("doctor: a failed backup, or none for twice the schedule's period, is flagged", () => {
  const now = Date.parse("2026-12-10T12:00:00Z");
  const hoursAgo = (h: number) => new Date(now - h * 3_600_000).toISOString();
  const last = (over: Partial<LastBackup>): LastBackup => ({
    schedule: "17 3 * * *", // daily
    keep: 7,
    status: "ok",
    at: hoursAgo(20),
    sizeBytes: 1,
    key: "k",
    since: hoursAgo(24 * 30),
    ...over,
  });
  assert.equal(backupIsCurrent(last({}), now), true);
  assert.equal(backupIsCurrent(last({ at: hoursAgo(47) }), now), true);
  assert.equal(backupIsCurrent(last({ at: hoursAgo(49) }), now), false, "older than 2 days");
  assert.equal(backupIsCurrent(last({ status: "failed", at: hoursAgo(1) }), now), false);
  assert.equal(backupIsCurrent(last({ status: "running", at: hoursAgo(100) }), now), true);
  // Never ran: fine for two periods after the schedule was registered, late after.
  assert.equal(backupIsCurrent(last({ status: "none", at: null, since: hoursAgo(30) }), now), true);
  assert.equal(
    backupIsCurrent(last({ status: "none", at: null, since: hoursAgo(50) }), now),
    false,
  );
  // Hourly: late after two hours.
  assert.equal(backupIsCurrent(last({ schedule: "0 * * * *", at: hoursAgo(3) }), now), false);
});
