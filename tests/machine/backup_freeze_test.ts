/**
 * The two halves of a consistent backup, for real on the host: the bootstrap's backup
 * responder (supervise mode, PID 1 of its own namespaces) freezes the machine's writers
 * while the guard script (machine/backup_guard.sh, run as Dokploy's `docker stop` would
 * stop it: SIGTERM) copies the home, and honours a stop request.
 */
import assert from "node:assert/strict";
import GUARD from "../../machine/backup_guard.sh" with { type: "text" };
import {
  execBootstrap,
  hasTool,
  loopbackSshd,
  type Machine,
  skipReason,
  sleep,
  spawnInNamespace,
} from "./harness.ts";

const skip = await skipReason(["unshare", "sshd", "ssh-keygen"]);
const READY = /\[devpod-bootstrap\] ready in/;

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

/** A machine in supervise mode whose PID 1 also runs a writer appending to home/w.log. */
async function machine(dir: string, shell: string): Promise<Machine> {
  const port = await loopbackSshd(dir);
  await Deno.mkdir(`${dir}/ctl`);
  await Deno.mkdir(`${dir}/home`);
  return spawnInNamespace(
    [
      "set -e",
      "mount -t tmpfs tmpfs /run",
      "mkdir /run/sshd",
      // A process that keeps writing: one numbered line every 20 ms.
      `(i=0; while :; do i=$((i+1)); echo "line $i" >>'${dir}/home/w.log'; sleep 0.02; done) &`,
      execBootstrap(shell === "busybox" ? "busybox ash" : shell),
    ].join("\n"),
    {
      DEVPOD_BOOTSTRAP_MODE: "supervise",
      DEVPOD_SSHD_CONFIG: `${dir}/sshd_config`,
      DEVPOD_STATE_DIR: `${dir}/state`,
      DEVPOD_SSHD_PORT: String(port),
      DEVPOD_SSHD_LISTEN: "127.0.0.1",
      DEVPOD_INACTIVITY_TIMEOUT: "0",
      DEVPOD_BACKUP_CTL: `${dir}/ctl`,
    },
  );
}

const size = async (path: string) => (await Deno.stat(path)).size;

for (const shell of ["dash", "busybox"]) {
  const why = skip ?? (await hasTool(shell) ? undefined : `needs ${shell}`);
  Deno.test({
    name:
      `backup under ${shell}: writers frozen while the guard copies; a stop request stops PID 1` +
      (why ? ` (skipped: ${why})` : ""),
    ignore: why !== undefined,
    async fn(t) {
      const dir = await Deno.makeTempDir({ prefix: "devpod-freeze-" });
      const m = await machine(dir, shell);
      let guard: Deno.ChildProcess | null = null;
      try {
        await m.waitForLog(READY, 15_000);
        await until("the responder counts", 10_000, () => exists(`${dir}/ctl/alive`));
        await until("the writer writes", 10_000, async () => await size(`${dir}/home/w.log`) > 0);

        await t.step(
          "freeze: the writer stops until the request goes, then runs again",
          async () => {
            await Deno.writeTextFile(`${dir}/ctl/freeze`, "");
            await until("frozen", 10_000, () => exists(`${dir}/ctl/frozen`));
            const frozenAt = await size(`${dir}/home/w.log`);
            await sleep(1_000);
            assert.equal(await size(`${dir}/home/w.log`), frozenAt, "nothing written while frozen");
            await Deno.remove(`${dir}/ctl/freeze`);
            await until("thawed", 10_000, async () => !(await exists(`${dir}/ctl/frozen`)));
            await until(
              "writes again",
              10_000,
              async () => await size(`${dir}/home/w.log`) > frozenAt,
            );
            // Logged just after the thaw; the log comes through a pipe, so wait for it.
            await m.waitForLog(/writers were frozen for \d+ s/, 10_000);
          },
        );

        await t.step(
          "the guard's stop: a snapshot taken frozen, byte for byte the home",
          async () => {
            await Deno.mkdir(`${dir}/snap`);
            await Deno.writeTextFile(`${dir}/snap/stale`, "from the last backup");
            guard = new Deno.Command("sh", {
              args: ["-c", GUARD],
              env: {
                DEVPOD_SNAPSHOT_DIR: `${dir}/snap`,
                DEVPOD_HOME_DIR: `${dir}/home`,
                DEVPOD_BACKUP_CTL: `${dir}/ctl`,
                DEVPOD_MACHINE_ID: "ws-1",
              },
              stdout: "piped",
              stderr: "inherit",
            }).spawn();
            const out = guard.stdout.pipeThrough(new TextDecoderStream());
            const reader = out.getReader();
            let log = "";
            while (!log.includes("ready")) log += (await reader.read()).value ?? "";
            assert.equal(await exists(`${dir}/snap/stale`), false, "a start frees the snapshot");
            guard.kill("SIGTERM");
            for (let r = await reader.read(); !r.done; r = await reader.read()) log += r.value;
            assert.equal((await guard.status).code, 0, log);
            guard = null;
            const manifest = JSON.parse(await Deno.readTextFile(`${dir}/snap/.devpod-backup.json`));
            assert.equal(manifest.consistency, "frozen", log);
            assert.equal(manifest.machineId, "ws-1");
            assert.equal(manifest.copyStatus, 0);
            // Frozen for the copy: the copy is whole lines, a prefix of what the writer wrote on.
            const copy = await Deno.readTextFile(`${dir}/snap/w.log`);
            const live = await Deno.readTextFile(`${dir}/home/w.log`);
            assert.ok(copy.endsWith("\n") && live.startsWith(copy), "a prefix of whole lines");
            await until(
              "writes again",
              10_000,
              async () => await size(`${dir}/home/w.log`) > copy.length,
            );
            assert.equal(await exists(`${dir}/ctl/freeze`), false);
          },
        );

        await t.step(
          "a stop request (as the provider's stop sends over SSH): PID 1 exits 0",
          async () => {
            assert.equal(m.exited, false);
            await Deno.writeTextFile(`${dir}/ctl/requests/stop`, "");
            const status = await m.status(40_000);
            assert.equal(status.code, 0, m.log);
            assert.match(m.log, /stop requested by the provider/);
          },
        );
      } finally {
        if (guard) (guard as Deno.ChildProcess).kill("SIGKILL");
        await m.dispose();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}
