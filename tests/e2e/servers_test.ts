/**
 * Machines across Dokploy servers (issue 13), through the real entry point against an
 * emulated Dokploy with three remote servers, each server's machines on its own loopback
 * address: DOKPLOY_SERVER_ID by name, id, local and auto; placement by size; parallel
 * auto creates; per-server ports; a server Dokploy cannot reach; the whole lifecycle on
 * a remote server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { MachineState } from "../../lib/machine/state.ts";
import { runProvider, type RunResult, startWorld, type World } from "./harness.ts";
import type { ServerOption } from "../emulator/mod.ts";

const SERVERS: ServerOption[] = [
  { serverId: "srv-a", name: "alpha" },
  { serverId: "srv-b", name: "beta" },
  { serverId: "srv-c", name: "gamma" },
  { serverId: "srv-off", name: "sleeper", serverStatus: "inactive" },
  { serverId: "srv-build", name: "builder", serverType: "build" },
];

function ok(what: string, r: RunResult) {
  assert.equal(r.code, 0, `${what} failed (${r.code}): ${r.stderr}`);
}

async function stateOf(w: World, id: string): Promise<MachineState> {
  return JSON.parse(await Deno.readTextFile(join(w.folder(id), "state.json")));
}

/** The emulator's view of a machine: its server and where its sshd listens. */
async function placed(w: World, id: string) {
  const c = (await w.emu.snapshot()).composes.find((x) => x.name === `devpod-${id}`);
  assert.ok(c, `no service for ${id}`);
  return c;
}

async function ipOf(w: World, serverId: string): Promise<string> {
  return (await w.emu.snapshot()).servers.find((s) => s.serverId === serverId)!.ipAddress;
}

Deno.test({
  name: "servers: DOKPLOY_SERVER_ID by name, id or local; unknown ones listed in one line",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ servers: SERVERS });
    try {
      const on = (id: string, server: string) =>
        w.run("create", id, { env: { DOKPLOY_SERVER_ID: server } });
      ok("create by name", await on("by-name", "beta"));
      ok("create by id", await on("by-id", "srv-c"));
      ok("create local", await on("by-local", "local"));
      assert.equal((await placed(w, "by-name")).serverId, "srv-b");
      assert.equal((await placed(w, "by-id")).serverId, "srv-c");
      assert.equal((await placed(w, "by-local")).serverId, null);
      // DevPod dials the server's address: each machine answers there, as itself.
      for (const [id, server] of [["by-name", "srv-b"], ["by-id", "srv-c"]] as const) {
        const ip = await ipOf(w, server);
        assert.notEqual(ip, "127.0.0.1");
        const s = await stateOf(w, id);
        assert.equal(s.sshHost, ip);
        assert.equal((await placed(w, id)).publishedAddress, ip);
        // The host key is pinned per machine: an answer is this machine's.
        const r = await w.run("command", id, { command: `echo on-${id}` });
        ok(`command on ${id}`, r);
        assert.equal(r.stdoutText, `on-${id}\n`);
      }
      assert.equal((await stateOf(w, "by-local")).sshHost, "127.0.0.1");

      for (const bad of ["delta", "sleeper", "builder"]) {
        const r = await on(`bad-${bad}`, bad);
        assert.notEqual(r.code, 0);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], new RegExp(`DOKPLOY_SERVER_ID "${bad}"`));
      }
      const unknown = await on("bad-x", "delta");
      assert.match(
        unknown.stderr,
        /is not a server of this Dokploy; servers: srv-a \(alpha, active\), srv-b \(beta, active\), srv-c \(gamma, active\), srv-off \(sleeper, inactive\), srv-build \(builder, active, build only\)/,
      );
      assert.equal((await w.emu.snapshot()).composes.length, 3, "refused creates made nothing");
      const init = await runProvider(["init"], { ...w.env("x"), DOKPLOY_SERVER_ID: "delta" });
      assert.notEqual(init.code, 0);
      assert.match(init.stderr, /DOKPLOY_SERVER_ID "delta" is not a server/);

      const list = await runProvider(["list"], w.env("unused"));
      assert.match(list.stdoutText, /^by-name\s+Running\s+.+\s+beta\s/m);
      assert.match(list.stdoutText, /^by-local\s+Running\s+.+\s+local\s/m);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "servers: auto places each machine where the requested load is lowest, by size",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ servers: SERVERS });
    // CPUs within this machine's own (the emulator, like Docker, refuses more than it has).
    const sizes = ["2", "0.5", "0.5", "1", "0.5", "0.5", "0.5"];
    try {
      for (const [i, size] of sizes.entries()) {
        const id = `auto-${i}`;
        // What our machines ask for per usable server before this create.
        const before = await loads(w);
        const r = await w.run("create", id, {
          env: { DOKPLOY_SERVER_ID: "auto", MACHINE_CPUS: size, MACHINE_MEMORY: "1g" },
        });
        ok(`create ${id}`, r);
        const server = (await placed(w, id)).serverId!;
        assert.ok(["srv-a", "srv-b", "srv-c"].includes(server), `never inactive/build: ${server}`);
        const least = Math.min(...Object.values(before));
        assert.equal(
          before[server],
          least,
          `${id} went to ${server} with loads ${JSON.stringify(before)}`,
        );
        assert.match(
          r.stderr,
          /server auto: placed on (alpha|beta|gamma): the fewest CPUs requested/,
        );
      }
      const after = await loads(w);
      assert.equal(Object.values(after).reduce((a, b) => a + b), 5.5);
      // Always the least loaded: the spread never exceeds the biggest machine (2 CPUs).
      assert.ok(
        Math.max(...Object.values(after)) - Math.min(...Object.values(after)) <= 2,
        JSON.stringify(after),
      );
    } finally {
      await w.close();
    }
  },
});

/** Requested CPUs per usable server, from `list --json` (each machine's compose size). */
async function loads(w: World): Promise<Record<string, number>> {
  const out = { "srv-a": 0, "srv-b": 0, "srv-c": 0 } as Record<string, number>;
  const r = await runProvider(["list", "--json"], w.env("unused"));
  ok("list", r);
  for (const m of JSON.parse(r.stdoutText).machines) {
    if (m.serverId in out) out[m.serverId] += Number(m.cpus);
  }
  return out;
}

Deno.test({
  name: "servers: auto with monitoring places by headroom against each server's capacity",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({
      servers: [
        { serverId: "m-small", name: "small", metrics: { cpuCores: 4, memTotalGiB: 8 } },
        { serverId: "m-big", name: "big", metrics: { cpuCores: 32, memTotalGiB: 128 } },
      ],
    });
    try {
      const placedOn: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await w.run("create", `cap-${i}`, { env: { DOKPLOY_SERVER_ID: "auto" } });
        ok(`create cap-${i}`, r);
        assert.match(r.stderr, /server auto: placed on \w+: the most headroom for 2 CPU\/4 GiB/);
        placedOn.push((await placed(w, `cap-${i}`)).serverId!);
      }
      // The 4-CPU server would be half full after one machine; the big one stays freer.
      assert.deepEqual(placedOn, ["m-big", "m-big", "m-big"]);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "servers: parallel auto creates spread instead of piling onto one server",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ servers: SERVERS });
    const ids = Array.from({ length: 6 }, (_, i) => `par-${i}`);
    try {
      const runs = await Promise.all(
        ids.map((id) => w.run("create", id, { env: { DOKPLOY_SERVER_ID: "auto" } })),
      );
      runs.forEach((r, i) => ok(`create ${ids[i]}`, r));
      const per: Record<string, number> = {};
      for (const id of ids) {
        const s = (await placed(w, id)).serverId!;
        per[s] = (per[s] ?? 0) + 1;
      }
      console.log(`parallel auto creates per server: ${JSON.stringify(per)}`);
      assert.equal(Object.keys(per).length, 3, `all three servers used: ${JSON.stringify(per)}`);
      assert.ok(Math.max(...Object.values(per)) <= 3, `none piles up: ${JSON.stringify(per)}`);
      assert.equal((await w.emu.snapshot()).composes.length, 6, "moved machines left nothing");
      for (const id of ids) assert.equal((await w.run("status", id)).stdoutText, "Running\n");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "servers: two servers publish the same SSH port at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ servers: SERVERS });
    try {
      // A one-port range: only per-server ports let both machines have it.
      const port = Number(w.env("x").SSH_PORT_RANGE.split("-")[0]);
      const one = { SSH_PORT_RANGE: `${port}-${port}` };
      ok(
        "create on alpha",
        await w.run("create", "p-a", { env: { ...one, DOKPLOY_SERVER_ID: "alpha" } }),
      );
      ok(
        "create on beta",
        await w.run("create", "p-b", { env: { ...one, DOKPLOY_SERVER_ID: "beta" } }),
      );
      for (const id of ["p-a", "p-b"]) {
        assert.equal((await stateOf(w, id)).sshPort, port);
        const r = await w.run("command", id, { command: `echo on-${id}` });
        ok(`command ${id}`, r);
        assert.equal(r.stdoutText, `on-${id}\n`, "each answers on its own server's address");
      }
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "servers: a server Dokploy cannot reach is never taken for stopped machines",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ servers: SERVERS });
    const beta = { DOKPLOY_SERVER_ID: "beta" };
    try {
      ok("create on beta", await w.run("create", "gone-1", { env: beta }));
      await w.emu.setServer("srv-b", { reachable: false });
      // Dokploy answers [] for its containers, but the machine itself still answers.
      assert.equal((await w.run("status", "gone-1")).stdoutText, "Running\n");
      const cmd = await w.run("command", "gone-1", { command: "echo still-here" });
      assert.equal(cmd.stdoutText, "still-here\n");
      for (const verb of ["stop", "delete"]) {
        const r = await w.run(verb, "gone-1");
        assert.notEqual(r.code, 0, `${verb} must refuse`);
        const errors = r.stderr.trim().split("\n").filter((l) => !l.startsWith("[dokploy]"));
        assert.equal(errors.length, 1, r.stderr);
        assert.match(
          r.stderr,
          /Dokploy cannot reach server beta \(127\.0\.0\.\d+\) \(SSH connection error/,
        );
      }
      assert.ok(await placed(w, "gone-1"), "delete refused: the service is still there");
      // The server really went away: status says so instead of Stopped or NotFound.
      await w.emu.setServer("srv-b", { machinesDown: true });
      const status = await w.run("status", "gone-1");
      assert.notEqual(status.code, 0);
      assert.equal(status.stdoutText, "");
      assert.match(
        status.stderr,
        /Dokploy cannot reach server beta .*whether the machine runs is unknown/,
      );
      // auto goes elsewhere; doctor names the server.
      const auto = await w.run("create", "gone-2", { env: { DOKPLOY_SERVER_ID: "auto" } });
      ok("auto create beside an unreachable server", auto);
      assert.notEqual((await placed(w, "gone-2")).serverId, "srv-b");
      // Named, the server is used as asked: the deploy fails with one line naming it.
      const named = await w.run("create", "gone-3", { env: beta });
      assert.notEqual(named.code, 0);
      assert.match(
        named.stderr,
        /Dokploy cannot reach server beta \(127\.0\.0\.\d+\) \(SSH connection error[^)]*\); not deployed/,
      );
      assert.ok(
        !(await w.emu.snapshot()).composes.some((c) => c.name === "devpod-gone-3"),
        "the failed create was rolled back",
      );
      const doctor = await runProvider(["doctor"], w.env("unused"));
      assert.notEqual(doctor.code, 0);
      assert.match(
        doctor.stdoutText,
        /✘ server beta\s+Dokploy cannot reach 127\.0\.0\.\d+ \(SSH connection error[^)]*\); 1 machine\(s\) there/,
      );
      assert.match(doctor.stdoutText, /✔ server alpha\s/);
      // Back: everything works again, nothing was lost.
      await w.emu.setServer("srv-b", { reachable: true, machinesDown: false });
      assert.equal((await w.run("status", "gone-1")).stdoutText, "Running\n");
      ok("stop", await w.run("stop", "gone-1"));
      assert.equal((await w.run("status", "gone-1")).stdoutText, "Stopped\n");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "servers: the whole lifecycle on a remote server, data kept across stop/start",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ servers: SERVERS });
    const env = { DOKPLOY_SERVER_ID: "gamma" };
    try {
      ok("create", await w.run("create", "life", { env }));
      ok("write", await w.run("command", "life", { command: "echo kept > ~/note", env }));
      ok("stop", await w.run("stop", "life", { env }));
      assert.equal((await w.run("status", "life", { env })).stdoutText, "Stopped\n");
      ok("start", await w.run("start", "life", { env }));
      const read = await w.run("command", "life", { command: "cat ~/note", env });
      assert.equal(read.stdoutText, "kept\n");
      assert.equal((await placed(w, "life")).publishedAddress, await ipOf(w, "srv-c"));
      ok("delete", await w.run("delete", "life", { env }));
      assert.equal((await w.run("status", "life", { env })).stdoutText, "NotFound\n");
      assert.equal((await w.emu.snapshot()).composes.length, 0);
    } finally {
      await w.close();
    }
  },
});
