/**
 * Runs machine/bootstrap.sh for real, as PID 1 of its own PID (and mount) namespace,
 * either in a chroot of a Debian root fs (full mode) or on the host (supervise mode).
 * Everything it starts dies with that PID 1; every wait here is bounded.
 */
import { BOOTSTRAP_SCRIPT } from "../../machine/bootstrap.ts";

/** Whether `tool` is on PATH. */
export async function hasTool(tool: string): Promise<boolean> {
  const found = await new Deno.Command("sh", {
    args: ["-c", `command -v "$1"`, "sh", tool],
    stdout: "null",
    stderr: "null",
  }).output();
  return found.success;
}

/** Why the namespace tests cannot run here (not root, a tool missing), or undefined. */
export async function skipReason(tools: string[]): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "needs Linux namespaces";
  if (Deno.uid() !== 0) return "needs root (unshare --pid, chroot, sshd)";
  for (const tool of tools) if (!(await hasTool(tool))) return `needs ${tool} on PATH`;
  return undefined;
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Rejects with a message naming `what` when `promise` takes longer than `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a command to completion (bounded), returning its exit code and text output. With
 * `env`, the command gets only that environment (as a container would).
 */
export async function run(
  cmd: string,
  args: string[],
  timeoutMs = 30_000,
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    ...(env ? { env, clearEnv: true, stdin: "null" } : {}),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const out = await within(timeoutMs, `${cmd} ${args.join(" ")}`, child.output());
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    throw err;
  }
}

/** An ed25519 key pair made by ssh-keygen: paths and the public line. */
export interface KeyPair {
  path: string;
  pub: string;
}

export async function keygen(dir: string, name: string): Promise<KeyPair> {
  const path = `${dir}/${name}`;
  const out = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path]);
  if (out.code !== 0) throw new Error(`ssh-keygen failed: ${out.stderr}`);
  return { path, pub: (await Deno.readTextFile(`${path}.pub`)).trim() };
}

/**
 * A supervise-mode sshd set-up in `dir`: a host key, an empty authorized_keys and an
 * sshd_config on a free loopback port, for user nobody. Returns the port.
 */
export async function loopbackSshd(dir: string): Promise<number> {
  const port = freePort();
  const host = await keygen(dir, "host");
  await Deno.writeTextFile(`${dir}/authorized_keys`, "");
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${host.path}`,
      "PidFile none",
      "UsePAM no",
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "AllowUsers nobody",
      "",
    ].join("\n"),
  );
  return port;
}

/** A running bootstrap: its log so far and ways to wait for or stop it. */
export class Machine {
  #child: Deno.ChildProcess;
  #status: Promise<Deno.CommandStatus>;
  #exited = false;
  #log = "";
  #pumps: Promise<void>[];

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
  }

  async #pump(stream: ReadableStream<Uint8Array>) {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) this.#log += text;
  }

  /** Everything PID 1 and its children wrote (the container log). */
  get log(): string {
    return this.#log;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Waits until the log matches `pattern`; fails early if the machine exits first. */
  async waitForLog(pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const match = this.#log.match(pattern);
      if (match) return match;
      if (this.#exited) {
        await Promise.all(this.#pumps);
        const late = this.#log.match(pattern);
        if (late) return late;
        throw new Error(`machine exited before ${pattern}; log:\n${this.#log}`);
      }
      await sleep(50);
    }
    throw new Error(`timed out after ${ms} ms waiting for ${pattern}; log:\n${this.#log}`);
  }

  /** The exit status of PID 1 (bounded), with the whole log read. */
  async status(ms: number): Promise<Deno.CommandStatus> {
    const status = await within(ms, "bootstrap exit", this.#status);
    await within(5_000, "bootstrap log", Promise.all(this.#pumps));
    return status;
  }

  /** Host pid of the namespace's PID 1 (unshare's only child). */
  async pid1(): Promise<number> {
    const pid = this.#child.pid;
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const children = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
      const first = parseInt(children.trim().split(" ")[0]);
      if (first > 0) return first;
      await sleep(20);
    }
    throw new Error("no PID 1 under unshare");
  }

  /** Sends a signal to PID 1 (unshare itself ignores TERM/INT while it waits). */
  async signal(sig: Deno.Signal): Promise<void> {
    Deno.kill(await this.pid1(), sig);
  }

  /** Kills the whole namespace (SIGKILL to PID 1) and waits for it: for `finally`. */
  async dispose(): Promise<void> {
    if (!this.#exited) {
      try {
        Deno.kill(await this.pid1(), "SIGKILL");
      } catch {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* gone */ }
      }
    }
    await within(10_000, "namespace teardown", this.#status).catch(() => {});
    await within(1_000, "log pipes", Promise.all(this.#pumps)).catch(() => {});
  }
}

/**
 * Starts `script` (a prelude run as PID 1 that ends by exec-ing the bootstrap) in new
 * mount and PID namespaces, with a clean environment like a container's.
 */
export function spawnInNamespace(script: string, env: Record<string, string>): Machine {
  const child = new Deno.Command("unshare", {
    args: ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script],
    clearEnv: true,
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      BOOTSTRAP_SCRIPT,
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return new Machine(child);
}

/** Shell lines that hand over to the bootstrap: `exec [chroot ROOT] SHELL -c <script>`. */
export function execBootstrap(shell: string, chrootDir?: string): string {
  const chroot = chrootDir ? `chroot '${chrootDir}' ` : "";
  return [
    // The script travels in the environment; the bootstrap need not inherit it.
    "s=$BOOTSTRAP_SCRIPT; unset BOOTSTRAP_SCRIPT",
    `exec ${chroot}${shell} -c "$s" devpod-bootstrap`,
  ].join("\n");
}

/** Runs `ssh` against a machine on 127.0.0.1 with the pinned host key only. */
export function sshArgs(opts: {
  port: number;
  key?: string;
  knownHosts: string;
  user?: string;
  extra?: string[];
}): string[] {
  return [
    "-F",
    "/dev/null",
    "-p",
    String(opts.port),
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${opts.knownHosts}`,
    "-o",
    "ConnectTimeout=10",
    ...(opts.key ? ["-i", opts.key, "-o", "IdentitiesOnly=yes"] : []),
    ...(opts.extra ?? []),
    `${opts.user ?? "devpod"}@127.0.0.1`,
  ];
}

/** The boot time the bootstrap logged (`ready in 1.23s`), in seconds. */
export function readyTime(log: string): number {
  const match = log.match(/\[devpod-bootstrap\] ready in (\d+\.\d+)s/);
  if (!match) throw new Error(`no "ready in" line in log:\n${log}`);
  return Number(match[1]);
}

/** A throwaway root fs made from a cached one, for one test. */
export interface Layer {
  /** Where the root appears inside the namespace (mounted by `prelude`). */
  root: string;
  /** Host directory that holds every change made to the root (overlay upper dir or copy). */
  changes: string;
  /** Shell lines that make `root` usable inside a fresh mount namespace. */
  prelude: string;
}

/**
 * Layers a writable root over `lower` in `dir`: an overlay mount (instant, and its upper
 * dir shows exactly what a boot changed) when the kernel allows it here, else `cp -a`.
 */
export async function layerRoot(lower: string, dir: string): Promise<Layer> {
  const [root, upper, work] = ["root", "upper", "work"].map((d) => `${dir}/${d}`);
  for (const d of [root, upper, work]) await Deno.mkdir(d);
  const overlay =
    `mount -t overlay overlay -o 'lowerdir=${lower},upperdir=${upper},workdir=${work}' '${root}'`;
  const probe = await run("unshare", ["--mount", "sh", "-c", overlay]);
  if (probe.code === 0) return { root, changes: upper, prelude: overlay };
  const copy = await run("cp", ["-a", `${lower}/.`, root], 300_000);
  if (copy.code !== 0) throw new Error(`cp -a ${lower} failed: ${copy.stderr}`);
  return { root, changes: root, prelude: ":" };
}

/** `path mode uid:gid mtime size` of every file under `dir` except `skip` subtrees. */
export async function snapshot(dir: string, skip: string[]): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(`${dir}/${rel}`)) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (skip.includes(path)) continue;
      const st = await Deno.lstat(`${dir}/${path}`);
      lines.push(
        `${path} ${st.mode?.toString(8)} ${st.uid}:${st.gid} ${st.mtime?.getTime()} ${st.size}`,
      );
      if (st.isDirectory) await walk(path);
    }
  };
  await walk("");
  return lines.sort();
}
