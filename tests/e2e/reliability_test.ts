/**
 * Fault-injection suite (issue: reliability and security). Every scenario runs the
 * real entry point against its own emulator with a recognisable token, then counts
 * orphans (Dokploy services or volumes no machine folder knows), lost data and token
 * occurrences in everything produced. Ends with a figure table.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readState } from "../../lib/machine/state.ts";
import { orphans, spawnVerb } from "./fault_support.ts";
import { type RunResult, startWorld, type World } from "./harness.ts";

const CANARY = `dkp-CANARY-${crypto.randomUUID().replaceAll("-", "")}`;

interface Figures {
  machinesCreated: number;
  orphans: number;
  dataLost: number;
  tokenHits: number;
  parallelOk?: [number, number];
}

/** Everything a scenario produced that a user or a machine could see. */
class Evidence {
  texts: string[] = [];
  add(r: RunResult): RunResult {
    this.texts.push(r.stdoutText, r.stderr);
    return r;
  }
  tokenHits(): number {
    return this.texts.reduce((n, t) => n + t.split(CANARY).length - 1, 0);
  }
}

async function world(extra: Parameters<typeof startWorld>[0] = {}) {
  return await startWorld({
    token: CANARY,
    ...extra,
    options: { DEVPOD_DEBUG: "true", ...extra.options },
  });
}

/** Files the provider wrote (machine folder) and the emulator stored (machines, volumes). */
async function grepTree(dir: string): Promise<number> {
  let hits = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        hits += (await Deno.readTextFile(p).catch(() => "")).split(CANARY).length - 1;
      }
    }
  };
  await walk(dir).catch(() => {});
  return hits;
}

function killAfter(child: Deno.ChildProcess, w: World, procedure: string, signal: Deno.Signal) {
  const timer = setInterval(() => {
    if (w.emu.requests.some((r) => r.procedure === procedure)) {
      clearInterval(timer);
      child.kill(signal);
    }
  }, 20);
  return () => clearInterval(timer);
}

type Scenario = { name: string; run: (ev: Evidence) => Promise<Figures> };

const scenarios: Scenario[] = [];
const scenario = (name: string, run: Scenario["run"]) => scenarios.push({ name, run });

for (
  const procedure of [
    "project.create",
    "compose.create",
    "compose.update",
    "compose.deploy",
    "deployment.allByCompose",
  ]
) {
  scenario(`create fails at ${procedure} → rolled back`, async (ev) => {
    const w = await world();
    try {
      w.emu.faults.add({ procedure, status: 500, times: Infinity });
      const r = ev.add(await w.run("create", "fail-1"));
      assert.notEqual(r.code, 0);
      // Before compose.create answers there is nothing to roll back; after, there is.
      if (!["project.create", "compose.create"].includes(procedure)) {
        assert.match(r.stderr, /removing what this run created/);
      }
      w.emu.faults.clear();
      assert.equal((await w.emu.snapshot()).composes.length, 0, "rolled back");
      return {
        machinesCreated: 0,
        orphans: await orphans(w, ["fail-1"]),
        dataLost: 0,
        tokenHits: 0,
      };
    } finally {
      await w.close();
    }
  });
}

scenario("deploy error (image pull) → rolled back with the log tail", async (ev) => {
  const w = await world({ options: { MACHINE_IMAGE: "example/does-not-exist:1" } });
  try {
    const r = ev.add(await w.run("create", "pull-1"));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Dokploy failed to deploy the machine: .*/);
    return { machinesCreated: 0, orphans: await orphans(w, ["pull-1"]), dataLost: 0, tokenHits: 0 };
  } finally {
    await w.close();
  }
});

scenario("transient 502s, a dropped connection and 200 ms latency are survived", async (ev) => {
  const w = await world({ latencyMs: 200 });
  try {
    w.emu.faults.add({ procedure: "project.all", status: 502, times: 2 });
    w.emu.faults.add({ procedure: "compose.one", drop: true, times: 1 });
    assert.equal(ev.add(await w.run("create", "flaky-1")).code, 0);
    w.emu.faults.add({ procedure: "docker.getContainersByAppNameMatch", status: 503, times: 1 });
    const s = ev.add(await w.run("status", "flaky-1"));
    assert.equal(s.stdoutText, "Running\n");
    assert.equal(ev.add(await w.run("delete", "flaky-1")).code, 0);
    return {
      machinesCreated: 1,
      orphans: await orphans(w, ["flaky-1"]),
      dataLost: 0,
      tokenHits: 0,
    };
  } finally {
    await w.close();
  }
});

scenario("401 mid-run: status exits non-zero, never NotFound", async (ev) => {
  const w = await world();
  try {
    assert.equal(ev.add(await w.run("create", "auth-1")).code, 0);
    w.emu.faults.add({
      procedure: "compose.one",
      status: 401,
      body: { message: "Unauthorized" },
      times: Infinity,
    });
    const s = ev.add(await w.run("status", "auth-1"));
    assert.notEqual(s.code, 0);
    assert.equal(s.stdout.length, 0);
    assert.match(s.stderr, /401/);
    w.emu.faults.clear();
    assert.equal(ev.add(await w.run("delete", "auth-1")).code, 0);
    return { machinesCreated: 1, orphans: await orphans(w, ["auth-1"]), dataLost: 0, tokenHits: 0 };
  } finally {
    await w.close();
  }
});

scenario("provider killed (SIGKILL) mid-create → next create adopts, no duplicate", async (ev) => {
  const w = await world({ deployDelayMs: 1500 });
  try {
    const child = await spawnVerb(w, "create", "kill-1");
    const stop = killAfter(child, w, "compose.deploy", "SIGKILL");
    const out = await child.output();
    stop();
    assert.notEqual(out.code, 0);
    ev.texts.push(new TextDecoder().decode(out.stderr));
    const again = ev.add(await w.run("create", "kill-1"));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already exists in Dokploy; adopting/);
    assert.equal((await w.emu.snapshot()).composes.length, 1, "no duplicate service");
    assert.equal(ev.add(await w.run("command", "kill-1", { command: "true" })).code, 0);
    assert.equal(ev.add(await w.run("delete", "kill-1")).code, 0);
    return { machinesCreated: 1, orphans: await orphans(w, ["kill-1"]), dataLost: 0, tokenHits: 0 };
  } finally {
    await w.close();
  }
});

scenario("Ctrl-C (SIGINT) mid-create → rolled back, exit 130", async (ev) => {
  const w = await world({ deployDelayMs: 1500 });
  try {
    const child = await spawnVerb(w, "create", "int-1");
    const stop = killAfter(child, w, "compose.deploy", "SIGINT");
    const out = await child.output();
    stop();
    ev.texts.push(new TextDecoder().decode(out.stderr));
    assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
    await w.emu.waitIdle(10_000);
    assert.equal((await w.emu.snapshot()).composes.length, 0, "rolled back");
    return { machinesCreated: 0, orphans: await orphans(w, ["int-1"]), dataLost: 0, tokenHits: 0 };
  } finally {
    await w.close();
  }
});

scenario(
  "lost state.json → re-adopted by marker with its keys, or taken over by name",
  async (ev) => {
    const w = await world();
    try {
      assert.equal(ev.add(await w.run("create", "lost-1")).code, 0);
      ev.add(await w.run("command", "lost-1", { command: "echo precious > ~/data.txt" }));
      // state.json alone is lost: the folder's key is the one the machine trusts.
      await Deno.remove(join(w.folder("lost-1"), "state.json"));
      assert.equal(
        ev.add(await w.run("status", "lost-1")).stdoutText,
        "Running\n",
        "found by marker",
      );
      const adopt = ev.add(await w.run("create", "lost-1"));
      assert.equal(adopt.code, 0, adopt.stderr);
      assert.doesNotMatch(adopt.stderr, /re-establishing/, "its keys were kept");
      // Keys lost too: nothing proves this folder made it; a take-over must be asked for.
      for await (const f of Deno.readDir(w.folder("lost-1"))) {
        await Deno.remove(join(w.folder("lost-1"), f.name));
      }
      const refused = await w.run("create", "lost-1");
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /DOKPLOY_TAKE_OVER=lost-1/);
      const taken = ev.add(
        await w.run("create", "lost-1", { env: { DOKPLOY_TAKE_OVER: "lost-1" } }),
      );
      assert.equal(taken.code, 0, taken.stderr);
      assert.equal((await w.emu.snapshot()).composes.length, 1);
      const cat = ev.add(await w.run("command", "lost-1", { command: "cat ~/data.txt" }));
      const lost = cat.stdoutText === "precious\n" ? 0 : 1;
      assert.equal(ev.add(await w.run("delete", "lost-1")).code, 0);
      return {
        machinesCreated: 1,
        orphans: await orphans(w, ["lost-1"]),
        dataLost: lost,
        tokenHits: 0,
      };
    } finally {
      await w.close();
    }
  },
);

scenario("a different host key on the machine's port is refused", async (ev) => {
  const w = await world();
  try {
    assert.equal(ev.add(await w.run("create", "mitm-1")).code, 0);
    const state = (await readState(w.folder("mitm-1")))!;
    // Pin another key for that address: exactly what a stranger on the port looks like.
    const other =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3PGOTSUu7gTkTIJu3r+EaZkDiXo6r9RjeZqOEcCS0U";
    await Deno.writeTextFile(
      join(w.folder("mitm-1"), "known_hosts"),
      `[${state.sshHost}]:${state.sshPort} ${other}\n`,
    );
    const cmd = ev.add(await w.run("command", "mitm-1", { command: "echo should-not-run" }));
    assert.notEqual(cmd.code, 0);
    assert.equal(cmd.stdout.length, 0);
    assert.match(cmd.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION/);
    const start = ev.add(await w.run("start", "mitm-1"));
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /not this machine's pinned key/);
    assert.equal(ev.add(await w.run("delete", "mitm-1")).code, 0);
    return { machinesCreated: 1, orphans: await orphans(w, ["mitm-1"]), dataLost: 0, tokenHits: 0 };
  } finally {
    await w.close();
  }
});

scenario("8 parallel creates → 8 ports, 8 machines, one project; 8 tunnels on one", async (ev) => {
  const w = await world({ deployDelayMs: 100, options: { READY_TIMEOUT: "3m" } });
  const ids = Array.from({ length: 8 }, (_, i) => `par-${i}`);
  try {
    const results = await Promise.all(ids.map((id) => w.run("create", id, { timeoutMs: 240_000 })));
    results.forEach((r) => ev.add(r));
    const ok = results.filter((r) => r.code === 0).length;
    const ports = new Set<number>();
    for (const id of ids) {
      const s = await readState(w.folder(id));
      if (s) ports.add(s.sshPort);
    }
    assert.equal(ports.size, 8, "8 distinct ports");
    assert.equal(
      (await w.emu.snapshot()).projects.length,
      1,
      "parallel first creates converge on one project",
    );
    const tunnels = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => w.run("command", ids[0], { command: `sleep 1; echo t${i}` }),
      ),
    );
    tunnels.forEach((r, i) => assert.equal(ev.add(r).stdoutText, `t${i}\n`));
    const works = await Promise.all(ids.map((id) => w.run("command", id, { command: "id -un" })));
    const reachable = works.filter((r) => r.stdoutText === "devpod\n").length;
    await Promise.all(ids.map((id) => w.run("delete", id)));
    return {
      machinesCreated: ok,
      orphans: await orphans(w, ids),
      dataLost: 0,
      tokenHits: 0,
      parallelOk: [Math.min(ok, reachable), 8],
    };
  } finally {
    await w.close();
  }
});

scenario("token hygiene: full lifecycle with DEVPOD_DEBUG leaks the token nowhere", async (ev) => {
  const w = await world();
  try {
    const id = "hyg-1";
    for (const verb of ["init", "create", "status", "stop", "start"]) {
      const r = ev.add(await w.run(verb, id));
      assert.equal(r.code, 0, `${verb}: ${r.stderr}`);
    }
    // The machine's environment and the ssh child's env/argv must not carry it.
    const remote = ev.add(
      await w.run("command", id, { command: "env; cat /proc/1/environ | tr '\\0' '\\n'" }),
    );
    assert.equal(remote.code, 0);
    const child = await spawnVerb(w, "command", id);
    await new Promise((r) => setTimeout(r, 50));
    let childHits = 0;
    for await (const p of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(p.name)) continue;
      const cmdline = await Deno.readTextFile(`/proc/${p.name}/cmdline`).catch(() => "");
      if (!cmdline.startsWith("ssh\0")) continue;
      const environ = await Deno.readTextFile(`/proc/${p.name}/environ`).catch(() => "");
      childHits += (cmdline + environ).split(CANARY).length - 1;
    }
    await child.output().catch(() => {});
    const files = await grepTree(w.folder(id)) + await grepTree(w.emu.dataDir);
    const requestBodies = w.emu.requests
      .map((r) => JSON.stringify(r.body ?? {}))
      .join("\n").split(CANARY).length - 1;
    assert.equal(ev.add(await w.run("delete", id)).code, 0);
    return {
      machinesCreated: 1,
      orphans: await orphans(w, [id]),
      dataLost: 0,
      tokenHits: childHits + files + requestBodies,
    };
  } finally {
    await w.close();
  }
});

Deno.test({
  name: "reliability: fault-injection suite with figures",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const totals = { scenarios: 0, machines: 0, orphans: 0, dataLost: 0, token: 0, parallel: "-" };
    const failures: string[] = [];
    const queue = [...scenarios];
    const worker = async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const ev = new Evidence();
        try {
          const f = await s.run(ev);
          totals.scenarios++;
          totals.machines += f.machinesCreated;
          totals.orphans += f.orphans;
          totals.dataLost += f.dataLost;
          totals.token += f.tokenHits + ev.tokenHits();
          if (f.parallelOk) totals.parallel = `${f.parallelOk[0]}/${f.parallelOk[1]}`;
          console.log(`  ✔ ${s.name}`);
        } catch (err) {
          failures.push(`${s.name}: ${(err as Error).message}`);
          console.log(`  ✘ ${s.name}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    console.log(
      [
        "",
        "| figure | value |",
        "|---|---|",
        `| scenarios run | ${totals.scenarios}/${scenarios.length} |`,
        `| machines created | ${totals.machines} |`,
        `| orphans left | ${totals.orphans} |`,
        `| data lost | ${totals.dataLost} |`,
        `| token occurrences in outputs | ${totals.token} |`,
        `| parallel creates succeeded | ${totals.parallel} |`,
      ].join("\n"),
    );
    assert.deepEqual(failures, []);
    assert.equal(totals.orphans, 0);
    assert.equal(totals.dataLost, 0);
    assert.equal(totals.token, 0);
    assert.equal(totals.parallel, "8/8");
  },
});
