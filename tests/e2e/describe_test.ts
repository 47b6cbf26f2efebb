/**
 * `describe` (the maintained DevPod fork's `devpod machine describe`) through
 * `deno run mod.ts describe`: what it says is checked against what the emulated Dokploy
 * holds and what `status` answers, on the Dokploy host and on a remote server, with and
 * without state.json; a machine that does not exist fails in one line; extra lines (the
 * seam "last backup" plugs into) are added, and one that fails is a note.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { machineDeps } from "../../lib/context/dokploy.ts";
import { silentLogger } from "../../lib/log.ts";
import { describeMachine, formatDescription } from "../../lib/machine/describe.ts";
import { type MachineState, STATE_FILE } from "../../lib/machine/state.ts";
import type { ServerOption } from "../emulator/mod.ts";
import { ok } from "../emulator/test_support.ts";
import { startWorld, type World } from "./harness.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const SERVERS: ServerOption[] = [{ serverId: "srv-b", name: "beta" }];

/** `describe`'s lines as label → value; it must succeed and print nothing on stderr. */
async function describe(w: World, id: string, env: Record<string, string> = {}) {
  const r = await w.run("describe", id, { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  return new Map(
    r.stdoutText.trimEnd().split("\n").map((l) => {
      const m = /^([a-z ]+):\s+(.*)$/.exec(l);
      assert.ok(m, `not a "label: value" line: ${l}`);
      return [m[1], m[2]] as const;
    }),
  );
}

async function statusOf(w: World, id: string, env: Record<string, string> = {}) {
  return (await w.run("status", id, { env })).stdoutText.trim();
}

async function stateOf(w: World, id: string): Promise<MachineState> {
  return JSON.parse(await Deno.readTextFile(join(w.folder(id), STATE_FILE)));
}

async function serviceOf(w: World, id: string) {
  const c = (await w.emu.snapshot()).composes.find((x) => x.name === `devpod-${id}`);
  assert.ok(c, `no service for ${id}`);
  return c;
}

Deno.test({
  ...e2e,
  name: "describe: service, server, address, size, state as status says, cache, created",
  async fn() {
    const w = await startWorld({ servers: SERVERS, options: { IMAGE_CACHE: "true" } });
    const local = "desc-local";
    const remote = "desc-beta";
    const beta = { DOKPLOY_SERVER_ID: "beta", MACHINE_CPUS: "1.5", MACHINE_MEMORY: "3072m" };
    try {
      for (const [id, env] of [[local, {}], [remote, beta]] as const) {
        const r = await w.run("create", id, { env });
        assert.equal(r.code, 0, r.stderr);
      }

      const lines = await describe(w, local);
      const state = await stateOf(w, local);
      const service = await serviceOf(w, local);
      assert.deepEqual([...lines.keys()], [
        "machine",
        "service",
        "server",
        "address",
        "size",
        "state",
        "image cache",
        "prebuilds",
        "created",
      ]);
      assert.equal(lines.get("machine"), local);
      assert.equal(
        lines.get("service"),
        `${service.appName} (compose ${service.composeId}) in project devpod-workspaces`,
      );
      assert.equal(
        lines.get("server"),
        `local (the Dokploy host, ${new URL(w.emu.url).host})`,
      );
      assert.equal(lines.get("address"), `devpod@${state.sshHost}:${state.sshPort}`);
      assert.equal(lines.get("size"), "2 CPU, 4 GiB memory", "the small preset");
      assert.equal(lines.get("state"), await statusOf(w, local));
      assert.ok(state.imageCache, "the machine mirrors through the cache");
      assert.equal(lines.get("image cache"), state.imageCache);
      assert.equal(state.prebuilds, true, "and reaches its prebuild registry");
      assert.match(lines.get("prebuilds") ?? "", /--prebuild-repository localhost:5151\/prebuilds/);
      const row = await ok<{ createdAt: string }>(w.emu, "GET", "compose.one", {
        composeId: service.composeId,
      });
      assert.ok(row.createdAt, "Dokploy dates its services");
      assert.equal(lines.get("created"), row.createdAt);

      const onBeta = await describe(w, remote, beta);
      const betaState = await stateOf(w, remote);
      const betaIp = (await w.emu.snapshot()).servers.find((s) => s.serverId === "srv-b")!
        .ipAddress;
      assert.equal(onBeta.get("server"), `beta (srv-b, ${betaIp})`);
      assert.equal(onBeta.get("address"), `devpod@${betaIp}:${betaState.sshPort}`);
      assert.equal(onBeta.get("size"), "1.5 CPU, 3 GiB memory");
      assert.notEqual(onBeta.get("image cache"), lines.get("image cache"), "one cache per server");
      // A state status cannot tell (it fails): the machine is still described, with why.
      await w.emu.setServer("srv-b", { reachable: false, machinesDown: true });
      const unknown = await describe(w, remote, beta);
      assert.match(unknown.get("state")!, /^unknown: Dokploy cannot reach server beta /);
      assert.notEqual((await w.run("status", remote, { env: beta })).code, 0);
      await w.emu.setServer("srv-b", { reachable: true, machinesDown: false });

      // Stopped, as status says; then without state.json, found by marker, nothing written.
      assert.equal((await w.run("stop", local)).code, 0);
      const stopped = await describe(w, local);
      assert.equal(stopped.get("state"), "Stopped");
      assert.equal(stopped.get("state"), await statusOf(w, local));
      await Deno.remove(join(w.folder(local), STATE_FILE));
      const byMarker = await describe(w, local);
      assert.deepEqual(byMarker, stopped, "the same description without state.json");
      await assert.rejects(Deno.stat(join(w.folder(local), STATE_FILE)), Deno.errors.NotFound);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  ...e2e,
  name: "describe: a machine that does not exist fails in one line; extra lines are added",
  async fn() {
    const w = await startWorld();
    try {
      const ghost = await w.run("describe", "desc-ghost");
      assert.notEqual(ghost.code, 0);
      assert.equal(ghost.stdout.length, 0);
      assert.match(
        ghost.stderr,
        /^devpod-provider-dokploy: machine desc-ghost does not exist: no service in Dokploy project "devpod-workspaces" carries its marker; 'devpod up' creates it\n$/,
      );

      const id = "desc-extra";
      assert.equal((await w.run("create", id)).code, 0);
      const deps = machineDeps({
        env: w.env(id),
        log: silentLogger,
        stdout: () => Promise.resolve(),
        signal: new AbortController().signal,
      });
      const lines = await describeMachine(deps, [
        (_d, facts) =>
          Promise.resolve([{
            label: "last backup",
            value: `none yet for ${facts.compose.appName}`,
          }]),
        () => Promise.reject(new Error("the bucket did not answer\nsecond line")),
      ]);
      const text = formatDescription(lines);
      const appName = (await serviceOf(w, id)).appName;
      assert.match(text, new RegExp(`^last backup: none yet for ${appName}$`, "m"));
      assert.match(text, /^note:\s+the bucket did not answer$/m);
      assert.match(text, /^state:\s+Running$/m);
      // Values line up after the longest label.
      const columns = new Set(text.trimEnd().split("\n").map((l) => l.search(/(?<=:\s*)\S/)));
      assert.equal(columns.size, 1, text);
    } finally {
      await w.close();
    }
  },
});
