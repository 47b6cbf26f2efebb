/**
 * End-to-end harness: the in-repo Dokploy emulator plus the provider run exactly as
 * DevPod runs it — `deno run mod.ts <verb>` with options, MACHINE_ID, MACHINE_FOLDER
 * and COMMAND in the environment.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Emulator, type EmulatorOptions, startEmulator } from "../emulator/mod.ts";
import { runBounded } from "../engine/run.ts";

export const MOD = fileURLToPath(new URL("../../mod.ts", import.meta.url));

export interface RunResult {
  code: number;
  stdout: Uint8Array;
  stdoutText: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: Uint8Array | ReadableStream<Uint8Array>;
  command?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** The program to run instead of mod.ts (e.g. a bundled copy outside the repo). */
  entry?: string;
}

export interface World {
  emu: Emulator;
  root: string;
  /** DevPod's environment for a machine verb. */
  env(machineId: string, extra?: Record<string, string>): Record<string, string>;
  folder(machineId: string): string;
  run(verb: string, machineId: string, opts?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

/** Deno's cache as this process has it (Linux default: the user's cache folder + /deno). */
const DENO_DIR = Deno.env.get("DENO_DIR") ||
  join(Deno.env.get("XDG_CACHE_HOME") || join(Deno.env.get("HOME") ?? "/root", ".cache"), "deno");

/**
 * The user's cache folder of a provider run, under `root`: who the key is (lib/identity) is
 * kept there, never in the host's; Deno's own cache (which follows XDG_CACHE_HOME) stays.
 */
export function cacheEnv(root: string): { XDG_CACHE_HOME: string; DENO_DIR: string } {
  return { XDG_CACHE_HOME: join(root, "cache"), DENO_DIR };
}

const RANGE_SIZE = 40;
// Below Linux's ephemeral ports (32768–60999): there a client socket of any test (an
// HTTP call, an ssh) can hold a port a machine is about to publish. 20000–29999 is the
// real-engine suite's.
const FIRST_PORT = 10000;
const RANGE_COUNT = 250; // 10000–19999
const RANGE_LOCKS = join(Deno.env.get("TMPDIR") ?? "/tmp", "devpod-e2e-port-ranges");

/**
 * A port range no other world holds, in this process or another test file's (they run
 * in parallel): a lock file per range naming its owner's pid; a dead owner's is stale.
 */
async function claimRange(): Promise<{ range: string; release(): Promise<void> }> {
  await Deno.mkdir(RANGE_LOCKS, { recursive: true });
  for (let i = 0; i < RANGE_COUNT; i++) {
    const slot = (Deno.pid + i) % RANGE_COUNT;
    const lock = join(RANGE_LOCKS, `${slot}.pid`);
    if (!(await tryLock(lock))) continue;
    const from = FIRST_PORT + slot * RANGE_SIZE;
    return {
      range: `${from}-${from + RANGE_SIZE - 1}`,
      release: () => Deno.remove(lock).catch(() => {}),
    };
  }
  throw new Error("no free SSH port range for an e2e world");
}

async function tryLock(lock: string, staleChecked = false): Promise<boolean> {
  try {
    await Deno.writeTextFile(lock, String(Deno.pid), { createNew: true });
    return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists) || staleChecked) return false;
  }
  const owner = Number(await Deno.readTextFile(lock).catch(() => ""));
  if (owner > 0 && await Deno.stat(`/proc/${owner}`).then(() => true, () => false)) return false;
  await Deno.remove(lock).catch(() => {});
  return await tryLock(lock, true); // createNew again: one claimant wins a stale lock
}

/** The CLI line whose environment the provider gets: DevPod's `DEVPOD_*` or Devsy's `DEVSY_*`. */
export type CliLine = "devpod" | "devsy";

export async function startWorld(
  opts: EmulatorOptions & { options?: Record<string, string>; entry?: string; cli?: CliLine } = {},
): Promise<World> {
  // Claimed first: a lock outlives a failed start only until this process exits.
  const { range, release } = await claimRange();
  const emu = await startEmulator({ deployDelayMs: 50, ...opts });
  const root = await Deno.makeTempDir({ prefix: "devpod-e2e-" });
  // DevPod's own layout, so `cleanup` can tell live machines from orphans.
  const cli = opts.cli ?? "devpod";
  const devpodHome = join(root, cli);
  const folder = (id: string) => join(devpodHome, "contexts", "default", "machines", id);
  const env = (machineId: string, extra: Record<string, string> = {}): Record<string, string> => ({
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? root,
    ...cliEnv(cli, devpodHome),
    PROVIDER_ID: "dokploy",
    PROVIDER_CONTEXT: "default",
    PROVIDER_FOLDER: join(root, "provider"),
    ...cacheEnv(root),
    MACHINE_ID: machineId,
    MACHINE_FOLDER: folder(machineId),
    MACHINE_CONTEXT: "default",
    MACHINE_PROVIDER: "dokploy",
    DOKPLOY_SERVER_URL: emu.url,
    DOKPLOY_API_TOKEN: emu.token,
    DOKPLOY_PROJECT_NAME: "devpod-workspaces",
    SSH_PORT_RANGE: range,
    READY_TIMEOUT: "60s",
    INACTIVITY_TIMEOUT: "0",
    // Off unless a test is about it (image_cache_test, round trips): the cache adds a
    // service, a deploy and calls that the other tests' counts and faults do not expect.
    IMAGE_CACHE: "false",
    ...opts.options,
    ...extra,
  });
  return {
    emu,
    root,
    env,
    folder,
    async run(verb, machineId, o = {}) {
      const e = env(machineId, o.env);
      if (o.command !== undefined) e.COMMAND = o.command;
      await Deno.mkdir(folder(machineId), { recursive: true });
      return await runProvider([verb], e, { entry: opts.entry, ...o });
    },
    async close() {
      await emu.close();
      await release();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * What each line sets for every provider command besides options and MACHINE_* (its
 * GetBaseEnvironment): DevPod `DEVPOD*`, Devsy the same renamed `DEVSY*`
 * (devsy pkg/provider/env.go), plus its log level, which Devsy always passes.
 */
function cliEnv(cli: CliLine, home: string): Record<string, string> {
  if (cli === "devpod") {
    return {
      DEVPOD: "/usr/local/bin/devpod",
      DEVPOD_OS: "linux",
      DEVPOD_ARCH: "amd64",
      DEVPOD_HOME: home,
    };
  }
  return {
    DEVSY: "/usr/local/bin/devsy",
    DEVSY_OS: "linux",
    DEVSY_ARCH: "amd64",
    DEVSY_LOG_LEVEL: "info",
    DEVSY_HOME: home,
  };
}

/** Runs `deno run mod.ts ARGS` with exactly `env`, bounded in time. */
export async function runProvider(
  args: string[],
  env: Record<string, string>,
  o: RunOptions = {},
): Promise<RunResult> {
  const out = await runBounded(
    Deno.execPath(),
    ["run", "--allow-all", "--quiet", o.entry ?? MOD, ...args],
    { env, clearEnv: true, stdin: o.stdin, timeoutMs: o.timeoutMs },
  );
  return {
    code: out.code,
    stdout: out.stdout,
    stdoutText: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** `n` random bytes (getRandomValues fills at most 64 KiB a call). */
export function randomBytes(n: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  return data;
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
