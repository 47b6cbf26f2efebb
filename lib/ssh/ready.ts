/**
 * Readiness: a machine is ready when an authenticated `ssh true` with the pinned host
 * key succeeds. A cheap TCP probe runs first so we do not spawn ssh at a closed port.
 */
import { HostKeyMismatchError, InterruptedError, MachineNotReadyError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { childEnv } from "../process.ts";
import { sshArgv, type SshTarget } from "./argv.ts";
import { HOST_KEY_REFUSED, hostKeyRefusedMessage } from "./host_key.ts";

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  log: Logger;
  /** Called between attempts (e.g. to check the deploy did not fail meanwhile). */
  onWait?: () => Promise<void>;
}

const BRISK_MS = 5000;

export async function waitUntilReachable(t: SshTarget, opts: WaitOptions): Promise<number> {
  const started = performance.now();
  const deadline = started + opts.timeoutMs;
  let delay = 100;
  let lastError = "port closed";
  let attempts = 0;
  while (performance.now() < deadline) {
    if (opts.signal?.aborted) throw new InterruptedError("interrupted while waiting for SSH");
    attempts++;
    if (await tcpOpen(t.host, t.port)) {
      const r = await sshProbe(t, Math.max(1, Math.min(10, (deadline - performance.now()) / 1000)));
      if (r.ok) {
        const ms = Math.round(performance.now() - started);
        opts.log.debug(`ssh ready after ${ms}ms (${attempts} probes)`);
        return ms;
      }
      if (HOST_KEY_REFUSED.test(r.stderr)) {
        throw new HostKeyMismatchError(hostKeyRefusedMessage(t.host, t.port));
      }
      lastError = r.stderr.trim().split("\n").pop() || "ssh failed";
    }
    await opts.onWait?.();
    await sleep(delay, opts.signal);
    // A machine that was just started answers within a few seconds: probe briskly then
    // (Docker's proxy accepts TCP before sshd listens, so each miss costs an ssh), back
    // off after.
    if (performance.now() - started > BRISK_MS) delay = Math.min(1000, delay * 1.5);
  }
  throw new MachineNotReadyError(
    `the machine did not answer SSH on ${t.host}:${t.port} within ${
      Math.round(opts.timeoutMs / 1000)
    }s (last: ${lastError}); check that the port is reachable from here (firewall, SSH_HOST, SSH_PORT_RANGE)`,
  );
}

/** True when a TCP connect to host:port succeeds within 3 s. */
export async function tcpOpen(host: string, port: number): Promise<boolean> {
  try {
    const conn = await Promise.race([
      Deno.connect({ hostname: host.replace(/^\[|\]$/g, ""), port }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), 3000)),
    ]);
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** One fresh `ssh true` (no shared connection, so the host key is checked again). */
export function sshProbe(
  t: SshTarget,
  timeoutSec: number,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return sshRun(t, timeoutSec, "true");
}

/**
 * One remote command over a fresh connection; bounded by `timeoutSec` to connect and twice
 * that in all, unless `totalSec` says otherwise.
 */
export async function sshRun(
  t: SshTarget,
  timeoutSec: number,
  command: string,
  opts: { totalSec?: number } = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command("ssh", {
    args: [...sshArgv(t, { connectTimeoutSec: Math.ceil(timeoutSec) }), command],
    signal: AbortSignal.timeout((opts.totalSec ?? timeoutSec * 2) * 1000),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: childEnv(),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: out.success, stdout: text(out.stdout), stderr: text(out.stderr) };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * True when an SSH server greets on host:port within 3 s (its `SSH-2.0-…` line). Stronger
 * than tcpOpen: Docker's proxy, or a frozen host, accepts TCP with nobody behind it.
 */
export async function sshGreets(host: string, port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  let timeout: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise<null>((r) => timeout = setTimeout(() => r(null), 3000));
  try {
    conn =
      await Promise.race([Deno.connect({ hostname: host.replace(/^\[|\]$/g, ""), port }), timer]) ??
        undefined;
    if (!conn) return false;
    const buf = new Uint8Array(8);
    const n = await Promise.race([conn.read(buf), timer]);
    return typeof n === "number" && new TextDecoder().decode(buf.subarray(0, n)).startsWith("SSH-");
  } catch {
    return false;
  } finally {
    clearTimeout(timeout);
    try {
      conn?.close();
    } catch { /* already closed */ }
  }
}
