/**
 * How Dokploy runs a shell command (packages/server/src/utils/process/execAsync.ts):
 * `execAsync` (node's exec: `/bin/sh -c`, 1 MiB per stream at most), `execAsyncStream`
 * (the same, its output handed on chunk by chunk) and `execAsyncRemote` (ssh2 to the
 * service's server), each failing with Dokploy's words.
 *
 * The commands are real: they run here with the machine runtime's `docker` (the real
 * engine's CLI, or the host runtime's stand-in) and the host's rclone. They are children
 * of the Dokploy process: a restart or close() kills them (their process groups).
 */
import type { Ctx } from "./context.ts";
import { sshFailure } from "./servers.ts";

/** node's exec default `maxBuffer`: past it the child is killed and the call fails. */
const MAX_BUFFER = 1024 * 1024;

/** Dokploy's ExecError: what a failed command leaves for its caller. */
export class ExecError extends Error {
  constructor(message: string, readonly stdout = "", readonly stderr = "") {
    super(message);
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * One Dokploy process lifetime: its children (so that a restart kills them all at once)
 * and a signal that fires when it dies, so work it had begun records nothing more.
 */
export class DokployProcess {
  #groups = new Set<Deno.ChildProcess>();
  #done = new Set<Promise<unknown>>();
  #life = new AbortController();

  /** Aborted when this Dokploy dies (a restart); a fresh one after. */
  get lifetime(): AbortSignal {
    return this.#life.signal;
  }

  track(child: Deno.ChildProcess): void {
    this.#groups.add(child);
    const done = child.status.finally(() => {
      this.#groups.delete(child);
      this.#done.delete(done);
    });
    this.#done.add(done);
  }

  /** The Dokploy process died: its shells and what they started die with it. */
  die(): void {
    this.#life.abort();
    this.#life = new AbortController();
    for (const child of this.#groups) {
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  async settle(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => timer = setTimeout(r, timeoutMs));
    await Promise.race([Promise.allSettled([...this.#done]), timeout]);
    clearTimeout(timer);
  }
}

interface RunOptions {
  /** Every chunk of stdout and stderr as it arrives (execAsyncStream, execAsyncRemote). */
  onData?: (chunk: string) => void;
  /** node's exec limit; ssh2 has none. */
  maxBuffer?: boolean;
}

interface RunOutcome extends ExecResult {
  code: number;
  /** Which stream went past maxBuffer, if one did. */
  overflow: "stdout" | "stderr" | null;
}

/** `/bin/sh -c command` with the server's docker; output collected (and streamed). */
async function runShell(
  ctx: Ctx,
  serverId: string | null,
  command: string,
  opts: RunOptions,
): Promise<RunOutcome> {
  const home = `${ctx.dataDir}/dokploy-home`;
  await Deno.mkdir(home, { recursive: true });
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", command],
    cwd: ctx.dataDir,
    // Exactly this environment: no AWS_CA_BUNDLE (Debian's rclone 1.60 fails on it).
    clearEnv: true,
    env: { ...await ctx.runtime.commandEnv(serverId), HOME: home, LANG: "C.UTF-8" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  ctx.dokploy.track(child);
  let overflow: RunOutcome["overflow"] = null;
  const readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr") => {
    const reader = stream.getReader();
    readers.push(reader);
    const decoder = new TextDecoder();
    let text = "";
    let bytes = 0;
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = decoder.decode(value, { stream: true });
        bytes += value.length;
        opts.onData?.(chunk);
        if (opts.maxBuffer && bytes > MAX_BUFFER) {
          text += chunk.slice(0, Math.max(0, chunk.length - (bytes - MAX_BUFFER)));
          overflow ??= name;
          // node's exec: both pipes closed, then SIGTERM to the shell (not its children).
          for (const r of readers) r.cancel().catch(() => {});
          try {
            child.kill("SIGTERM");
          } catch {
            // exited meanwhile
          }
          break;
        }
        text += chunk;
      }
    } catch {
      // cancelled
    }
    return text;
  };
  const [stdout, stderr, status] = await Promise.all([
    collect(child.stdout, "stdout"),
    collect(child.stderr, "stderr"),
    child.status,
  ]);
  return { code: status.code, stdout, stderr, overflow };
}

/** execAsync / execAsyncStream on the Dokploy host. */
export async function execLocal(
  ctx: Ctx,
  command: string,
  onData?: (chunk: string) => void,
): Promise<ExecResult> {
  const r = await runShell(ctx, null, command, { onData, maxBuffer: true });
  if (r.overflow) {
    throw new ExecError(
      `Command execution failed: ${r.overflow} maxBuffer length exceeded`,
      r.stdout,
      r.stderr,
    );
  }
  if (r.code !== 0) {
    throw new ExecError(
      `Command execution failed: Command failed: ${command}\n${r.stderr}`,
      r.stdout,
      r.stderr,
    );
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** execAsyncRemote: over SSH to the server; a failure is its exit code only. */
export async function execRemote(
  ctx: Ctx,
  serverId: string,
  command: string,
  onData?: (chunk: string) => void,
): Promise<ExecResult> {
  const unreachable = sshFailure(ctx.store, serverId);
  if (unreachable) {
    onData?.(unreachable);
    throw new ExecError(unreachable);
  }
  const r = await runShell(ctx, serverId, command, { onData });
  if (r.code !== 0) {
    throw new ExecError(`Remote command failed with exit code ${r.code}`, r.stdout, r.stderr);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Dokploy's usual `serverId ? execAsyncRemote(…) : execAsync(…)`. */
export function execOn(
  ctx: Ctx,
  serverId: string | null | undefined,
  command: string,
  onData?: (chunk: string) => void,
): Promise<ExecResult> {
  return serverId ? execRemote(ctx, serverId, command, onData) : execLocal(ctx, command, onData);
}

/** Dokploy's `paths(isServer).BASE_PATH` (`/etc/dokploy`) on the Dokploy host or a server. */
export function basePath(ctx: Ctx, serverId: string | null | undefined): string {
  return serverId ? `${ctx.dataDir}/servers/${serverId}` : ctx.dataDir;
}
