/**
 * Fast test of the bootstrap's supervise phase and idle watchdog, on the host: the real
 * script in supervise mode (as the emulator runs it) with a tiny sshd config, as PID 1
 * of its own namespaces, under each POSIX shell it must support.
 */
import assert from "node:assert/strict";
import {
  execBootstrap,
  hasTool,
  loopbackSshd,
  type Machine,
  skipReason,
  sleep,
  spawnInNamespace,
} from "./harness.ts";

const READY = /\[devpod-bootstrap\] ready in/;
const skip = await skipReason(["unshare", "sshd", "ssh-keygen"]);
const SHELLS = ["dash", "bash", "busybox"];

interface Rig {
  dir: string;
  port: number;
  start(timeout: number): Machine;
}

/** A temp dir with a host key and an sshd config on a free loopback port. */
async function rig(shell: string): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "devpod-watchdog-" });
  const port = await loopbackSshd(dir);
  const cmd = shell === "busybox" ? "busybox ash" : shell;
  return {
    dir,
    port,
    start: (timeout) =>
      spawnInNamespace(
        [
          "set -e",
          // sshd needs /run/sshd; a private tmpfs keeps the host's /run untouched.
          "mount -t tmpfs tmpfs /run",
          "mkdir /run/sshd",
          execBootstrap(cmd),
        ].join("\n"),
        {
          DEVPOD_BOOTSTRAP_MODE: "supervise",
          DEVPOD_SSHD_CONFIG: `${dir}/sshd_config`,
          DEVPOD_STATE_DIR: `${dir}/state`,
          DEVPOD_SSHD_PORT: String(port),
          DEVPOD_SSHD_LISTEN: "127.0.0.1",
          DEVPOD_INACTIVITY_TIMEOUT: String(timeout),
        },
      ),
  };
}

/** Host pid of the sshd started by PID 1. */
async function sshdPid(machine: Machine): Promise<number> {
  const pid1 = await machine.pid1();
  const children = await Deno.readTextFile(`/proc/${pid1}/task/${pid1}/children`);
  for (const pid of children.trim().split(" ").map(Number)) {
    const comm = await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "");
    if (comm.trim() === "sshd") return pid;
  }
  throw new Error("sshd not found among PID 1's children");
}

/** Asserts nothing listens on `port` any more (no stray sshd). */
function assertPortFree(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
}

for (const shell of SHELLS) {
  const why = skip ?? (await hasTool(shell) ? undefined : `needs ${shell} on PATH`);
  Deno.test({
    name: `bootstrap supervise mode under ${shell}: idle stop, held connection, TERM, sshd death` +
      (why ? ` (skipped: ${why})` : ""),
    ignore: why !== undefined,
    async fn(t) {
      const r = await rig(shell);
      const machines: Machine[] = [];
      const start = (timeout: number) => {
        const m = r.start(timeout);
        machines.push(m);
        return m;
      };
      try {
        await t.step("idle for 2 s: PID 1 exits 0 by itself", async () => {
          const m = start(2);
          await m.waitForLog(READY, 10_000);
          const ready = Date.now();
          const status = await m.status(10_000);
          const took = (Date.now() - ready) / 1000;
          assert.equal(status.code, 0, m.log);
          assert.match(m.log, /stopped after 2s without an SSH session/);
          assert.ok(took >= 1.5, `stopped too early (${took} s)`);
          console.log(`  [${shell}] idle stop ${took.toFixed(1)} s after ready (timeout 2 s)`);
          assertPortFree(r.port);
        });

        await t.step("a held TCP connection keeps it running past the timeout", async () => {
          const m = start(2);
          await m.waitForLog(READY, 10_000);
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: r.port });
          try {
            await sleep(4_500);
            assert.equal(m.exited, false, `stopped while a connection was open:\n${m.log}`);
          } finally {
            conn.close();
          }
          const status = await m.status(10_000); // idle again: stops by itself
          assert.equal(status.code, 0, m.log);
        });

        await t.step("SIGTERM (docker stop): exit 0", async () => {
          const m = start(0);
          await m.waitForLog(/\] ready in .*idle stop: never/, 10_000);
          await m.signal("SIGTERM");
          const status = await m.status(5_000);
          assert.equal(status.code, 0, m.log);
          assert.match(m.log, /signal received: stopping/);
          assertPortFree(r.port);
        });

        await t.step("sshd dies by itself: exit non-zero (restart: on-failure)", async () => {
          const m = start(60);
          await m.waitForLog(READY, 10_000);
          Deno.kill(await sshdPid(m), "SIGKILL");
          const status = await m.status(5_000);
          assert.notEqual(status.code, 0, m.log);
          assert.match(m.log, /sshd exited by itself/);
        });
      } finally {
        for (const m of machines) await m.dispose();
        await Deno.remove(r.dir, { recursive: true });
      }
    },
  });
}
