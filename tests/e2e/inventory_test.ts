/**
 * The human verbs against the emulator: `list` shows this provider's machines, and
 * `cleanup` removes exactly the orphans (services whose DevPod machine folder is gone),
 * and only when asked with --yes.
 */
import assert from "node:assert/strict";
import { runProvider, startWorld } from "./harness.ts";

Deno.test({
  name: "e2e: list and cleanup see real and orphaned machines",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld();
    const ids = ["inv-a", "inv-b", "inv-c"];
    try {
      for (
        const id of await Promise.all(
          ids.map(async (id) => ((await w.run("create", id)).code === 0 ? id : "")),
        )
      ) {
        assert.ok(id, "every create succeeded");
      }
      const human = w.env("unused");
      const list = await runProvider(["list", "--json"], human);
      assert.equal(list.code, 0, list.stderr);
      const machines = JSON.parse(list.stdoutText).machines as {
        machineId: string;
        state: string;
        sshPort: number;
        cpus: string;
      }[];
      assert.deepEqual(machines.map((m) => m.machineId), ids);
      assert.ok(machines.every((m) => m.state === "Running" && m.sshPort > 0 && m.cpus === "2"));
      const doctor = await runProvider(["doctor"], human);
      assert.equal(doctor.code, 0, doctor.stdoutText);
      assert.match(doctor.stdoutText, /✔ API key \+ version\s+Dokploy v0\.30\.2/);
      assert.match(
        doctor.stdoutText,
        /✔ Dokploy host\s+3 running machine\(s\) reachable on 127.0.0.1/,
      );
      assert.match(doctor.stdoutText, /all checks passed\n$/);
      // Options from a .env file, as seed users keep them.
      const envFile = `${w.root}/.env`;
      await Deno.writeTextFile(
        envFile,
        `DOKPLOY_SERVER_URL=${w.emu.url}\nDOKPLOY_API_TOKEN=${w.emu.token}\n`,
      );
      const bare = {
        PATH: human.PATH,
        HOME: human.HOME,
        DEVPOD_HOME: human.DEVPOD_HOME,
        XDG_CACHE_HOME: human.XDG_CACHE_HOME,
        DENO_DIR: human.DENO_DIR,
      };
      const fromFile = await runProvider(["list", "--json", "--env-file", envFile], bare);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.equal(JSON.parse(fromFile.stdoutText).machines.length, 3);
      assert.deepEqual(JSON.parse(fromFile.stdoutText).imageCaches, [], "IMAGE_CACHE off here");
      const table = await runProvider(["list"], human);
      assert.match(table.stdoutText, /^MACHINE\s+STATE\s+SIZE\s+SERVER\s+PORT\s+AGE\n/);
      assert.match(table.stdoutText, /inv-b\s+Running\s+2 CPU\/4096m\s+local/);
      // The owner is the Dokploy user behind the key, shown with --all.
      const all = await runProvider(["list", "--all"], human);
      assert.match(all.stdoutText, /^MACHINE\s+STATE\s+SIZE\s+SERVER\s+PORT\s+AGE\s+OWNER\n/);
      assert.match(all.stdoutText, /^inv-b .* owner@dokploy\.test$/m);

      // DevPod forgot inv-b (its folder is gone): it is an orphan, the others are not.
      await Deno.remove(w.folder("inv-b"), { recursive: true });
      const dry = await runProvider(["cleanup"], human);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdoutText, /^orphan inv-b /m);
      assert.doesNotMatch(dry.stdoutText, /inv-a|inv-c/);
      assert.equal((await w.emu.snapshot()).composes.length, 3, "a dry run deletes nothing");

      const real = await runProvider(["cleanup", "--yes"], human);
      assert.equal(real.code, 0, real.stderr);
      assert.match(real.stdoutText, /^deleted inv-b /m);
      const left = (await w.emu.snapshot()).composes.map((c) => c.name).sort();
      assert.deepEqual(left, ["devpod-inv-a", "devpod-inv-c"]);
      for (const id of ["inv-a", "inv-c"]) {
        assert.equal((await w.run("status", id)).stdoutText, "Running\n");
      }
      assert.match((await runProvider(["cleanup"], human)).stdoutText, /no orphaned machines/);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: Dokploy v0.25.0 passes the lifecycle",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld({ version: "v0.25.0" });
    const id = "v025-0a1b2";
    try {
      for (const verb of ["init", "create", "stop", "start"]) {
        const r = await w.run(verb, id);
        assert.equal(r.code, 0, `${verb}: ${r.stderr}`);
      }
      assert.equal((await w.run("command", id, { command: "id -un" })).stdoutText, "devpod\n");
      assert.equal((await w.run("delete", id)).code, 0);
      assert.equal((await w.run("status", id)).stdoutText, "NotFound\n");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: DevPod variables missing → one line, exit 2, nothing created",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startWorld();
    try {
      for (const missing of ["MACHINE_ID", "MACHINE_FOLDER"]) {
        const env = w.env("m-1");
        delete env[missing];
        const r = await runProvider(["create"], env);
        assert.equal(r.code, 2);
        assert.match(
          r.stderr,
          new RegExp(`^devpod-provider-dokploy: ${missing} is not set[^\\n]*\\n$`),
        );
      }
      for (
        const [k, v] of [["MACHINE_CPUS", "99999"], ["SSH_PORT_RANGE", "1-99999999"], [
          "INACTIVITY_TIMEOUT",
          "-1m",
        ]]
      ) {
        const r = await w.run("create", "m-1", { env: { [k]: v } });
        assert.equal(r.code, 2, `${k}=${v}`);
        assert.match(r.stderr, new RegExp(`^devpod-provider-dokploy: ${k} [^\\n]*\\n$`));
      }
      assert.equal((await w.emu.snapshot()).composes.length, 0);
      assert.equal((await w.emu.snapshot()).projects.length, 0);
    } finally {
      await w.close();
    }
  },
});
