/**
 * Runs a program to its end, bounded in time (SIGKILL at the bound): the one process
 * runner of the test tooling, so nothing a test starts can hang it.
 */

export interface BoundedOptions {
  env?: Record<string, string>;
  /** Give the child exactly `env` (as DevPod and Dokploy's `env -i` do). */
  clearEnv?: boolean;
  cwd?: string;
  stdin?: Uint8Array | ReadableStream<Uint8Array>;
  /** Default 120 s. */
  timeoutMs?: number;
}

export interface Bounded {
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export async function runBounded(
  cmd: string,
  args: string[],
  opts: BoundedOptions = {},
): Promise<Bounded> {
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    clearEnv: opts.clearEnv,
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 120_000);
  try {
    if (opts.stdin instanceof Uint8Array) {
      const w = child.stdin.getWriter();
      await w.write(opts.stdin);
      await w.close();
    } else if (opts.stdin) {
      await opts.stdin.pipeTo(child.stdin);
    }
    const out = await child.output();
    return { code: out.code, stdout: out.stdout, stderr: out.stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** `runBounded` with the output as text; never throws for a non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  opts: BoundedOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await runBounded(cmd, args, opts);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
