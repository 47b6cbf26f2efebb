/**
 * Finding a machine's backups in the bucket through backup.listBackupFiles, as Dokploy
 * answers it over REST: an empty `search` is absent (400), a search without '/' is the
 * root filtered by it, every answer is cut at 100. The bucket here answers the root with
 * no folders unless told to (as s3rver 3.7.1 does): what is found must not need it.
 */
import assert from "node:assert/strict";
import {
  allBackups,
  backupByKey,
  type KnownFolder,
  machineBackups,
} from "../../lib/backup/bucket.ts";
import { recordedFolders, rememberFolder } from "../../lib/backup/folder_record.ts";
import { backupFolder } from "../../lib/backup/guard.ts";
import { BackupApi } from "../../lib/dokploy/backups.ts";
import type { DokployClient } from "../../lib/dokploy/client.ts";
import { appNamePrefix } from "../../lib/machine/naming.ts";

const TAKEN = "2026-12-03T12-18-10-292Z";
const keyOf = (app: string, id: string, t = TAKEN) =>
  `${backupFolder(app, id)}${app}_backup-${t}.tar`;

/** A bucket behind Dokploy's listBackupFiles; `searches` records every `search` sent. */
function bucket(keys: string[], opts: { rootFolders: boolean }) {
  const searches: string[] = [];
  const client = {
    query(procedure: string, params: Record<string, unknown>) {
      assert.equal(procedure, "backup.listBackupFiles");
      const search = params.search;
      searches.push(String(search));
      if (typeof search !== "string" || search === "") {
        throw new Error("400 Input validation failed: search: expected string, received undefined");
      }
      const slash = search.lastIndexOf("/");
      const dir = slash === -1 ? "" : search.slice(0, slash + 1);
      const term = search.slice(slash + 1).toLowerCase();
      if (!dir && !opts.rootFolders) return Promise.resolve([]);
      const entries = new Map<
        string,
        { Path: string; Name: string; Size: number; IsDir: boolean }
      >();
      for (const k of keys.filter((k) => k.startsWith(dir))) {
        const rest = k.slice(dir.length);
        const name = rest.split("/")[0];
        const isDir = rest.includes("/");
        entries.set(name, { Path: name, Name: name, Size: isDir ? 0 : 20_000, IsDir: isDir });
      }
      const listed = [...entries.values()].map((e) => ({ ...e, Path: `${dir}${e.Path}` }));
      return Promise.resolve(
        listed.filter((e) => !term || e.Path.toLowerCase().includes(term)).slice(0, 100),
      );
    },
  };
  return { api: new BackupApi(client as unknown as DokployClient), searches };
}

Deno.test("backups of a deleted machine: from its recorded folder, without the bucket's root", async () => {
  const gone = "devpod-ws-1-abc123";
  const live = "devpod-ws-2-def456";
  const keys = [
    keyOf(gone, "ws-1"),
    keyOf(gone, "ws-1", "2026-12-04T01-00-00-000Z"),
    keyOf(live, "ws-2"),
  ];
  const { api, searches } = bucket(keys, { rootFolders: false });
  const known: KnownFolder[] = [
    { machineId: "ws-1", folder: backupFolder(gone, "ws-1") },
    { machineId: "ws-2", folder: backupFolder(live, "ws-2") },
  ];
  const all = await allBackups(api, "d", known);
  assert.deepEqual(all.map((f) => f.key), [keys[1], keys[0], keys[2]], "newest first");
  const one = await machineBackups(api, "d", "ws-1", known);
  assert.deepEqual(one.map((f) => f.key), [keys[1], keys[0]]);
  assert.equal((await backupByKey(api, "d", keys[0]))?.key, keys[0]);
  assert.equal(await backupByKey(api, "d", keyOf(gone, "ws-9")), null);
  assert.ok(!searches.includes(""), `an empty search was sent: ${searches}`);
  // The restore's lookups never list the root: only list --backups searches it, with a term.
  assert.deepEqual(searches.filter((s) => !s.includes("/")), ["devpod-"]);
});

Deno.test("backups of a machine deleted elsewhere: found by a search of the root, past 100 folders", async () => {
  // 150 deleted machines, none recorded: only the root search (real S3 answers it) finds them.
  const ids = Array.from({ length: 150 }, (_, i) => `m${i}`);
  const keys = ids.map((id) => keyOf(`${appNamePrefix(id)}-x${id}`, id));
  keys.push("someone-else/backup.tar", `${appNamePrefix("m7")}-other_machine/m7/file.tar`);
  const { api, searches } = bucket(keys, { rootFolders: true });
  const all = await allBackups(api, "d", []);
  assert.equal(all.length, 150);
  assert.deepEqual(new Set(all.map((f) => f.machineId)), new Set(ids));
  const m12 = await machineBackups(api, "d", "m12", []);
  assert.deepEqual(m12.map((f) => f.key), [keyOf(`${appNamePrefix("m12")}-xm12`, "m12")]);
  assert.ok(searches.includes("devpod-m12"), "a machine is searched for by its appName's prefix");
  assert.ok(!searches.includes(""));
});

Deno.test("delete's record: one file per service, read back for the same Dokploy only", async () => {
  const home = await Deno.makeTempDir();
  try {
    assert.deepEqual(await recordedFolders(home, "http://a"), [], "none before any delete");
    await Promise.all([
      rememberFolder(home, {
        machineId: "ws-1",
        appName: "devpod-ws-1-abc123",
        dokploy: "http://a",
      }),
      rememberFolder(home, {
        machineId: "ws-1",
        appName: "devpod-ws-1-zzz999",
        dokploy: "http://a",
      }),
      rememberFolder(home, {
        machineId: "ws-2",
        appName: "devpod-ws-2-def456",
        dokploy: "http://b",
      }),
    ]);
    const mine = await recordedFolders(home, "http://a");
    assert.deepEqual(mine.map((r) => r.folder).sort(), [
      "devpod-ws-1-abc123_backup/ws-1/",
      "devpod-ws-1-zzz999_backup/ws-1/",
    ]);
    assert.ok(mine.every((r) => r.machineId === "ws-1"));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
