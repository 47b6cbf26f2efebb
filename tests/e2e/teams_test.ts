/**
 * One Dokploy, a whole team (issue 25), through `deno run mod.ts` as DevPod runs it: each
 * person with their own API key and DevPod home, against the emulator's users and roles.
 * Nothing acts on another owner's machine; the figure line counts what was touched.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RecordedRequest } from "../emulator/api.ts";
import { runProvider, startWorld, type World } from "./harness.ts";

interface Person {
  email: string;
  userId: string;
  token: string;
  home: string;
}

/** A user of the organisation with an API key, a DevPod home and a cache folder of their own. */
async function person(
  w: World,
  email: string,
  role: "admin" | "member",
  grants = {},
): Promise<Person> {
  const user = w.emu.addUser({ email, role, grants });
  const home = join(w.root, `home-${email.split("@")[0]}`);
  await Deno.mkdir(join(home, "contexts", "default", "machines"), { recursive: true });
  return { ...user, home };
}

function envOf(w: World, p: Person, machineId: string, extra: Record<string, string> = {}) {
  const folder = join(p.home, "contexts", "default", "machines", machineId);
  return w.env(machineId, {
    DOKPLOY_API_TOKEN: p.token,
    DEVPOD_HOME: p.home,
    MACHINE_FOLDER: folder,
    PROVIDER_FOLDER: join(p.home, "contexts", "default", "providers", "dokploy"),
    XDG_CACHE_HOME: join(p.home, "cache"),
    ...extra,
  });
}

/** A machine verb as DevPod runs it for this person (it makes the machine folder first). */
async function as(
  w: World,
  p: Person,
  verb: string[],
  machineId = "none",
  o: { command?: string; env?: Record<string, string> } = {},
) {
  const env = envOf(w, p, machineId, o.env);
  if (o.command !== undefined) env.COMMAND = o.command;
  if (machineId !== "none") await Deno.mkdir(env.MACHINE_FOLDER, { recursive: true });
  return await runProvider(verb, env);
}

/** What changes a machine (its spec, keys, state or domains). */
const CHANGES =
  /^compose\.(update|deploy|redeploy|stop|start|delete)$|^domain\.(create|update|delete)$/;
/** ...and reading its service row (keys, compose file, env). */
const READS_OR_CHANGES = new RegExp(`${CHANGES.source}|^compose\\.one$`);

Deno.test({
  name: "e2e teams: owners, refusals, cleanup per owner, a member's view, legacy claims",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const w = await startWorld();
    let refusals = 0;
    /** A refusal: non-zero, one line on stderr naming what it says, nothing on stdout. */
    const refused = (r: { code: number; stderr: string; stdoutText: string }, what: RegExp) => {
      assert.notEqual(r.code, 0, "refused");
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line: ${r.stderr}`);
      assert.match(lines[0], what);
      assert.equal(r.stdoutText, "");
      refusals++;
    };
    try {
      const alice = await person(w, "alice@team.test", "admin");
      const bob = await person(w, "bob@team.test", "admin");
      const owners = new Map<string, string>(); // composeId → userId of its owner
      const composeOf = async (p: Person, machineId: string) => {
        const r = await as(w, p, ["list", "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const m = JSON.parse(r.stdoutText).machines.find((x: { machineId: string }) =>
          x.machineId === machineId
        );
        owners.set(m.composeId, p.userId);
        return m;
      };

      await t.step("alice makes shared1 and keeps a secret in its home", async () => {
        const c = await as(w, alice, ["create"], "shared1");
        assert.equal(c.code, 0, c.stderr);
        const put = await as(w, alice, ["command"], "shared1", {
          command: "echo alice-only > ~/.a-secret",
        });
        assert.equal(put.code, 0, put.stderr);
        const m = await composeOf(alice, "shared1");
        assert.equal(m.owner, "alice@team.test");
        assert.equal(m.ownerId, alice.userId);
      });

      await t.step(
        "bob's create of the same id is refused; alice's machine is untouched",
        async () => {
          const before = w.emu.requests.length;
          refused(
            await as(w, bob, ["create"], "shared1"),
            /machine shared1 belongs to alice@team\.test; create acts only on your own machines: pick another machine name/,
          );
          const bobsCalls = w.emu.requests.slice(before);
          assert.ok(bobsCalls.some((r) => r.procedure === "project.one"), "bob looked");
          assert.deepEqual(
            bobsCalls.filter((r) => READS_OR_CHANGES.test(r.procedure)),
            [],
            "never read or changed it",
          );
          // Bob's DevPod sees no machine of his named so; alice still gets in with her keys.
          const st = await as(w, bob, ["status"], "shared1");
          assert.equal(st.stdoutText, "NotFound\n", st.stderr);
          const get = await as(w, alice, ["command"], "shared1", { command: "cat ~/.a-secret" });
          assert.equal(get.stdoutText, "alice-only\n", get.stderr);
          refused(
            await as(w, bob, ["preview", "shared1", "8080"]),
            /belongs to alice@team\.test; preview acts only/,
          );
          refused(await as(w, bob, ["stop"], "shared1"), /does not exist in Dokploy/);
        },
      );

      await t.step(
        "bob's cleanup --yes leaves alice's machines; alice's own removes her orphan",
        async () => {
          const made = await as(w, alice, ["create"], "alice2");
          assert.equal(made.code, 0, made.stderr);
          await composeOf(alice, "alice2");
          const b = await as(w, bob, ["cleanup", "--yes"]);
          assert.equal(b.code, 0, b.stderr);
          assert.doesNotMatch(b.stdoutText, /deleted/);
          // Alice's DevPod forgets alice2: an orphan of hers, from this home.
          await Deno.remove(join(alice.home, "contexts", "default", "machines", "alice2"), {
            recursive: true,
          });
          const dry = await as(w, alice, ["cleanup"]);
          assert.match(dry.stdoutText, /^orphan alice2 /m);
          assert.doesNotMatch(dry.stdoutText, /shared1/);
          const a = await as(w, alice, ["cleanup", "--yes"]);
          assert.match(a.stdoutText, /^deleted alice2 \(.*owner alice@team\.test\)$/m);
          assert.doesNotMatch(a.stdoutText, /deleted shared1/);
        },
      );

      await t.step(
        "a DevPod home that cannot be found fails cleanup in one line; nothing is deleted",
        async () => {
          const nowhere = join(w.root, "no-home");
          const before = w.emu.requests.length;
          refused(
            await as(w, alice, ["cleanup", "--yes"], "none", {
              // A human run: no folder of DevPod's to find the home from.
              env: {
                DEVPOD_HOME: join(nowhere, ".devpod"),
                HOME: nowhere,
                PROVIDER_FOLDER: "",
                MACHINE_FOLDER: "",
              },
            }),
            /no DevPod or Devsy home found .*; set DEVPOD_HOME \(or DEVSY_HOME\).*nothing was deleted/,
          );
          assert.equal(
            w.emu.requests.slice(before).filter((r) => r.procedure === "compose.delete").length,
            0,
          );
        },
      );

      await t.step(
        "her own machine from a second laptop: keys first, or a take-over by name",
        async () => {
          const laptop2 = { ...alice, home: join(w.root, "alice-laptop2") };
          refused(
            await as(w, laptop2, ["create"], "shared1"),
            /is yours in Dokploy, but this DevPod folder does not hold the key it trusts.*DOKPLOY_TAKE_OVER=shared1/,
          );
          // DevPod drops the folder of a machine whose create failed; laptop 2's cleanup then
          // does not take laptop 1's machine for an orphan.
          const folder2 = join(laptop2.home, "contexts", "default", "machines", "shared1");
          await Deno.remove(folder2, { recursive: true });
          const c = await as(w, laptop2, ["cleanup", "--yes"]);
          assert.doesNotMatch(c.stdoutText, /deleted shared1/);
          assert.match(c.stdoutText, /kept shared1 .*made from a DevPod home not on this computer/);
          // Asked for by name, the take-over hands the machine laptop 2's keys; the data stays.
          const taken = await as(w, laptop2, ["create"], "shared1", {
            env: { DOKPLOY_TAKE_OVER: "shared1" },
          });
          assert.equal(taken.code, 0, taken.stderr);
          assert.match(taken.stderr, /DOKPLOY_TAKE_OVER=shared1: handing machine shared1 this/);
          const get = await as(w, laptop2, ["command"], "shared1", { command: "cat ~/.a-secret" });
          assert.equal(get.stdoutText, "alice-only\n", get.stderr);
        },
      );

      await t.step("a member sees only what it made or was given", async () => {
        const grants = { canCreateServices: true, canDeleteServices: true };
        const carol = await person(w, "carol@team.test", "member", grants);
        const dave = await person(w, "dave@team.test", "member", grants);
        const project = (await composeOf(alice, "shared1")) && await projectIds(w);
        for (const m of [carol, dave]) w.emu.grant(m.userId, project);
        const c = await as(w, carol, ["create"], "c1");
        assert.equal(c.code, 0, c.stderr);
        const carols = await composeOf(carol, "c1");
        assert.equal(carols.owner, "carol@team.test");
        const all = await as(w, dave, ["list", "--all", "--json"]);
        assert.equal(all.code, 0, all.stderr);
        assert.deepEqual(JSON.parse(all.stdoutText).machines, [], "dave sees no one's machines");
        const d = await as(w, dave, ["cleanup", "--yes"]);
        assert.equal(d.code, 0, d.stderr);
        refused(
          await as(w, dave, ["preview", "c1", "8080"]),
          /machine c1 does not exist in Dokploy/,
        );
        refused(
          await as(w, carol, ["cleanup", "--all-owners"]),
          /cleanup --all-owners is for Dokploy owners and admins; carol@team\.test is a member/,
        );
        const still = await as(w, carol, ["status"], "c1");
        assert.equal(still.stdoutText, "Running\n", still.stderr);
      });

      await t.step("members each get an image cache of their own; an admin sees both", async () => {
        const grants = { canCreateServices: true, canDeleteServices: true };
        const erin = await person(w, "erin@team.test", "member", grants);
        const frank = await person(w, "frank@team.test", "member", grants);
        const project = await projectIds(w);
        for (const m of [erin, frank]) w.emu.grant(m.userId, project);
        const cache = { env: { IMAGE_CACHE: "true" } };
        for (const [m, id] of [[erin, "e1"], [frank, "f1"]] as const) {
          const r = await as(w, m, ["create"], id, cache);
          assert.equal(r.code, 0, r.stderr);
        }
        const caches = async (p: Person, all: string[] = []) =>
          JSON.parse((await as(w, p, ["list", "--json", ...all])).stdoutText).imageCaches;
        // Dokploy hides a member's cache from another member: each made one, on purpose.
        const [erins, franks] = [await caches(erin), await caches(frank)];
        assert.equal(erins.length, 1);
        assert.equal(franks.length, 1);
        assert.notEqual(erins[0].appName, franks[0].appName);
        assert.equal((await caches(bob, ["--all"])).length, 2);
        // Frank's cleanup keeps his cache while his machine is there, and never touches erin's.
        const c = await as(w, frank, ["cleanup", "--yes"]);
        assert.doesNotMatch(c.stdoutText, /deleted/);
        assert.equal((await caches(bob, ["--all"])).length, 2);
        for (const [m, id] of [[erin, "e1"], [frank, "f1"]] as const) {
          assert.equal((await as(w, m, ["delete"], id)).code, 0);
        }
      });

      await t.step(
        "an admin's cleanup --all-owners lists per owner and deletes only what is named",
        async () => {
          const list = await as(w, bob, ["cleanup", "--all-owners"]);
          assert.equal(list.code, 0, list.stderr);
          assert.match(list.stdoutText, /^alice@team\.test: 1 machine\(s\)\n {2}shared1 /m);
          assert.match(list.stdoutText, /^carol@team\.test: 1 machine\(s\)\n {2}c1 /m);
          assert.match(list.stdoutText, /nothing deleted/);
          refused(
            await as(w, bob, ["cleanup", "--all-owners", "--yes"]),
            /deletes only the machines it is given/,
          );
          const table = await as(w, bob, ["list", "--all"]);
          assert.match(table.stdoutText, /OWNER/);
          assert.match(table.stdoutText, /c1 .*carol@team\.test/);
          const mineOnly = await as(w, bob, ["list"]);
          assert.match(
            mineOnly.stdoutText,
            /^no machines\n[\s\S]*2 machine\(s\) of other owners or none not shown: list --all/,
          );
        },
      );

      await t.step(
        "a machine made before owners is claimed only by the holder of its keys",
        async () => {
          const made = await as(w, alice, ["create"], "old1");
          assert.equal(made.code, 0, made.stderr);
          const old = await composeOf(alice, "old1");
          // What an older provider wrote: no owner in the marker.
          await ownerless(w, old.composeId);
          await Deno.remove(
            join(alice.home, "contexts", "default", "machines", "old1", "state.json"),
          );
          const seen = await as(w, bob, ["list", "--all", "--json"]);
          const row = JSON.parse(seen.stdoutText).machines.find((m: { machineId: string }) =>
            m.machineId === "old1"
          );
          assert.equal(row.owner, "unknown");
          refused(
            await as(w, bob, ["create"], "old1"),
            /made before owners were recorded, and this DevPod folder does not hold its keys/,
          );
          const claim = await as(w, alice, ["start"], "old1");
          assert.equal(claim.code, 0, claim.stderr);
          assert.match(claim.stderr, /had no recorded owner; now alice@team\.test's/);
          assert.equal((await composeOf(alice, "old1")).ownerId, alice.userId);
        },
      );

      const across = crossOwnerCalls(w.emu.requests, owners, [alice, bob]);
      assert.deepEqual(across, [], "no call of one person touched another's machine");
      console.log(
        `teams: 2 users, ${across.length} machines touched across owners, ${refusals} refusals in one line`,
      );
    } finally {
      await w.close();
    }
  },
});

/** The project the machines live in, and its environments: what a member is granted. */
async function projectIds(w: World): Promise<{ projects: string[]; environments: string[] }> {
  const res = await fetch(`${w.emu.url}/api/project.all`, {
    headers: { "x-api-key": w.emu.token },
  });
  const all = await res.json() as {
    projectId: string;
    environments: { environmentId: string }[];
  }[];
  return {
    projects: all.map((p) => p.projectId),
    environments: all.flatMap((p) => p.environments.map((e) => e.environmentId)),
  };
}

/** Rewrites a machine's description as a provider before owners wrote it. */
async function ownerless(w: World, composeId: string): Promise<void> {
  const headers = { "x-api-key": w.emu.token, "content-type": "application/json" };
  const one =
    await (await fetch(`${w.emu.url}/api/compose.one?composeId=${composeId}`, { headers })).json();
  const description = String(one.description)
    .replace(/;owner=[^\]]*\]/, "]")
    .replace(/owner [^)]*\)/, "owner someone@laptop)");
  const res = await fetch(`${w.emu.url}/api/compose.update`, {
    method: "POST",
    headers,
    body: JSON.stringify({ composeId, description }),
  });
  assert.equal(res.status, 200);
  await res.body?.cancel();
}

/** Calls made with one person's key on a machine another person owns. */
function crossOwnerCalls(
  requests: RecordedRequest[],
  owners: Map<string, string>,
  people: Person[],
): RecordedRequest[] {
  const userOf = new Map(people.map((p) => [p.token, p.userId]));
  return requests.filter((r) => {
    const caller = userOf.get(r.headers["x-api-key"]);
    const composeId = String(
      (r.body as { composeId?: string } | null)?.composeId ?? r.query.composeId ?? "",
    );
    const owner = owners.get(composeId);
    return caller && owner && caller !== owner && CHANGES.test(r.procedure);
  });
}
