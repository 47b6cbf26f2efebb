/** Owners (lib/identity) and what cleanup may delete (lib/cleanup/plan.ts), without I/O. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { backupShown, restoreRefusal } from "../../lib/backup/whose.ts";
import { namedMachines, planCleanup } from "../../lib/cleanup/plan.ts";
import { candidateHomes, findHomes, homeOrigin } from "../../lib/devpod_home.ts";
import { identityFromMember, identityStore } from "../../lib/identity/identity.ts";
import { assertMine, pickMachine } from "../../lib/identity/ownership.ts";
import { projectNameProblem, userSlug } from "../../lib/identity/project_name.ts";
import type { MachineInfo } from "../../lib/machine/inventory.ts";
import { machineInfo } from "./support.ts";
import { describeMachine, parseMarker } from "../../lib/machine/naming.ts";

const alice = {
  userId: "u-alice",
  email: "alice@example.com",
  role: "member",
  organizationId: "o",
} as const;
const admin = {
  userId: "u-admin",
  email: "root@example.com",
  role: "admin",
  organizationId: "o",
} as const;

function marked(machineId: string, ownerId?: string, origin?: string) {
  const marker = {
    machineId,
    sshPort: 32001,
    ...(ownerId ? { ownerId } : {}),
    ...(origin ? { origin } : {}),
  };
  const description = describeMachine(marker, {
    providerVersion: "t",
    owner: `${ownerId}@example.com`,
  });
  return {
    compose: { composeId: `c-${machineId}-${ownerId}`, description },
    marker: parseMarker(description)!,
  };
}

Deno.test("user.get's member row is the identity; a custom role counts as member", () => {
  const row = {
    role: "owner",
    userId: "abc123",
    organizationId: "org",
    user: { id: "abc123", email: "o@x.io" },
  };
  assert.deepEqual(identityFromMember(row), {
    userId: "abc123",
    email: "o@x.io",
    role: "owner",
    organizationId: "org",
  });
  assert.equal(identityFromMember({ ...row, role: "developer" })?.role, "member");
  assert.equal(identityFromMember({ role: "owner" }), null);
  assert.equal(identityFromMember({ ...row, userId: "a b;c" }), null, "must fit the marker");
});

Deno.test("the identity file is keyed by URL and key, holds no key, and a torn file is asked again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = identityStore(dir, "https://d.example", "key-one");
    assert.equal(await a.read(), null);
    await a.write(alice);
    assert.deepEqual(await a.read(), alice);
    assert.equal(await identityStore(dir, "https://d.example", "key-two").read(), null);
    for await (const f of Deno.readDir(dir)) {
      const text = await Deno.readTextFile(join(dir, f.name));
      assert.doesNotMatch(text, /key-one/);
      assert.equal((await Deno.stat(join(dir, f.name))).mode! & 0o077, 0);
      await Deno.writeTextFile(join(dir, f.name), "{torn");
    }
    assert.equal(await a.read(), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("markers carry the owner and its home; older markers still parse, without one", () => {
  const m = marked("ws", "u-alice", "0a1b2c3d").marker;
  assert.deepEqual(m, { machineId: "ws", sshPort: 32001, ownerId: "u-alice", origin: "0a1b2c3d" });
  assert.deepEqual(parseMarker("[devpod-machine-id=ws;port=1;cpus=2;mem=4096]"), {
    machineId: "ws",
    sshPort: 1,
    cpus: 2,
    memoryMiB: 4096,
  });
});

Deno.test("a machine id is the caller's first, then an unclaimed one, then another's", () => {
  const bobs = marked("shared1", "u-bob");
  const legacy = marked("shared1");
  const hers = marked("shared1", "u-alice");
  assert.equal(pickMachine([bobs, legacy, hers], "shared1", alice)?.machine, hers);
  assert.equal(pickMachine([bobs, legacy], "shared1", alice)?.relation, "unknown");
  assert.equal(pickMachine([bobs], "shared1", alice)?.relation, "theirs");
  assert.equal(pickMachine([bobs], "other", alice), null);
  assert.throws(
    () => assertMine(bobs, alice, "restore"),
    /machine shared1 belongs to u-bob@example\.com; restore acts only on your own machines/,
  );
  assert.throws(() => assertMine(legacy, alice, "backup"), /made before owners were recorded/);
  assert.doesNotThrow(() => assertMine(legacy, alice, "start", { allowUnknown: true }));
});

function info(machineId: string, ownerId: string | null, origin: string | null): MachineInfo {
  return machineInfo(machineId, {
    composeId: `c-${machineId}-${ownerId}`,
    appName: `devpod-${machineId}-${ownerId}`,
    owner: ownerId ? `${ownerId}@example.com` : "unknown",
    ownerId,
    origin,
  });
}

Deno.test("cleanup: an orphan is mine, from a home here, with no folder; nothing else is", () => {
  const here = "aaaaaaaa";
  const machines = [
    info("gone", "u-alice", here), // orphan
    info("live", "u-alice", here), // folder present
    info("laptop2", "u-alice", "bbbbbbbb"), // mine, made elsewhere
    info("old-mine", "u-alice", null), // mine, made before homes were recorded
    info("bobs", "u-bob", here), // another owner's: never
    info("legacy", null, null), // no owner: listed only
  ];
  const plan = planCleanup(machines, alice, {
    machineIds: new Set(["live"]),
    origins: new Set([here]),
  });
  assert.deepEqual(plan.orphans.map((m) => m.machineId), ["gone"]);
  assert.deepEqual(plan.elsewhere.map((m) => m.machineId), ["laptop2", "old-mine"]);
  assert.deepEqual(plan.unclaimed.map((m) => m.machineId), ["legacy"]);
});

Deno.test("cleanup by name: a machine id naming several owners' machines must be named by service", () => {
  const machines = [info("shared1", "u-alice", null), info("shared1", "u-bob", null)];
  const one = namedMachines(machines, ["devpod-shared1-u-bob"]);
  assert.ok(Array.isArray(one) && one[0].ownerId === "u-bob");
  const both = namedMachines(machines, ["shared1"]);
  assert.ok("problem" in both && /names 2 machines/.test(both.problem));
  const none = namedMachines(machines, ["nope"]);
  assert.ok("problem" in none && /no machine named nope/.test(none.problem));
});

Deno.test("homes: DEVPOD_HOME, DEVSY_HOME and both defaults are looked at; none found is an error", async () => {
  const root = await Deno.makeTempDir();
  try {
    const env = { HOME: root, DEVSY_HOME: join(root, "devsy-home") };
    assert.deepEqual(candidateHomes(env), [
      join(root, "devsy-home"),
      join(root, ".devpod"),
      join(root, ".devsy"),
    ]);
    await assert.rejects(findHomes(env), /no DevPod or Devsy home found .*nothing was deleted/);
    await Deno.mkdir(join(root, ".devsy", "contexts", "default", "machines", "m1"), {
      recursive: true,
    });
    await Deno.mkdir(join(root, "devsy-home", "contexts", "x", "machines", "m2"), {
      recursive: true,
    });
    const found = await findHomes(env);
    assert.deepEqual([...found.machineIds].sort(), ["m1", "m2"]);
    assert.notEqual(
      await homeOrigin(join(root, ".devsy")),
      await homeOrigin(join(root, ".devpod")),
    );
    assert.equal(await homeOrigin("/h", "laptop1"), await homeOrigin("/h", "laptop1"));
    assert.notEqual(await homeOrigin("/h", "laptop1"), await homeOrigin("/h", "laptop2"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("DOKPLOY_PROJECT_NAME: {user} is the email's local part; other placeholders are refused", () => {
  assert.equal(userSlug(alice), "alice");
  assert.equal(userSlug({ email: "J.Doe+dev@x.io", userId: "u" }), "j-doe-dev");
  assert.equal(userSlug({ email: "@x.io", userId: "U1" }), "u1");
  assert.equal(projectNameProblem("devpod-{user}"), null);
  assert.match(
    projectNameProblem("devpod-{team}") ?? "",
    /has \{team\}; the only placeholder is \{user\}/,
  );
  assert.equal(admin.role, "admin");
});

Deno.test("backups: yours are your live machines' and the deleted ones a home here recorded", () => {
  const known = [
    { machineId: "live1", folder: "devpod-live1-x_backup/live1/" },
    { machineId: "gone", folder: "devpod-gone-y_backup/gone/", recordedHere: true },
  ];
  const key = (folder: string) => `${folder}devpod-x_home-2026.tar`;
  assert.equal(backupShown(key(known[0].folder), { relation: "mine" }, known, alice, false), true);
  assert.equal(backupShown("any", { relation: "theirs" }, known, alice, false), false);
  assert.equal(backupShown("any", { relation: "unknown" }, known, alice, false), false);
  assert.equal(backupShown(key(known[1].folder), null, known, alice, false), true);
  assert.equal(backupShown(key("devpod-bobs-z_backup/bobs/"), null, known, alice, false), false);
  assert.equal(backupShown("any", null, known, alice, true), false, "--all is for admins");
  assert.equal(backupShown("any", { relation: "theirs" }, known, admin, true), true);

  assert.equal(restoreRefusal("gone", null, known, alice, false), null);
  assert.match(
    restoreRefusal("bobs", null, known, alice, false) ?? "",
    /machine bobs is not in Dokploy, and no DevPod home on this computer deleted it/,
  );
  assert.match(restoreRefusal("bobs", null, known, alice, true) ?? "", /owner\/admin/);
  assert.equal(restoreRefusal("bobs", null, known, admin, true), null, "an admin names the key");
});
