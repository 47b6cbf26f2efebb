/**
 * The "host" machine runtime: each machine is a process tree in its own mount + PID
 * namespace on this host, running a real sshd on 127.0.0.1:<published port> as user
 * `devpod`, with its home volume bind-mounted onto /home/devpod.
 */
import { type MachineSpec, machineSpec } from "../compose_spec.ts";
import {
  ensureHost,
  type HostUser,
  MACHINE_ETC,
  MACHINE_HOME,
  MACHINE_USER,
} from "./host_setup.ts";
import { namespaceInit, signal } from "./process.ts";
import {
  codeDir,
  type ComposeApp,
  type ContainerRow,
  MachineError,
  type MachineRuntime,
  type MachineView,
} from "./runtime.ts";
import { renderSshdConfig } from "./sshd_config.ts";

export interface HostRuntimeOptions {
  dataDir: string;
  /** Grace period of `stop` before SIGKILL (docker's default: 10 s). */
  stopGraceMs?: number;
}

type ContainerState = "created" | "running" | "exited";

interface ContainerInfo {
  /** 64 hex chars; `docker ps` shows the first 12. */
  containerId: string;
  /** `<appName>-machine-1`, as docker compose names it. */
  name: string;
  state: ContainerState;
  exitCode: number | null;
  /** Epoch ms of the last start / exit. */
  startedAt: number | null;
  finishedAt: number | null;
  publishedPort: number;
}

interface Container {
  info: ContainerInfo;
  spec: MachineSpec;
  /** Identity of the spec: a changed spec means docker compose recreates the container. */
  specKey: string;
  proc: Deno.ChildProcess | null;
  /** Settles when the current process has exited and its exit was recorded. */
  exited: Promise<void>;
  /** Set by stop/remove/close so the restart policy leaves the machine alone. */
  stopping: boolean;
  restarts: number;
  restartTimer?: ReturnType<typeof setTimeout>;
}

const MAX_RESTARTS = 5;
const RESTART_DELAY_MS = 1000;
const CLOSE_GRACE_MS = 2000;
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Runs as the process Deno spawns: send all output to the container log, start a guard
// that kills this process group if the emulator dies without close(), become unshare.
// The guard is double-forked so that unshare's only child stays the machine's PID 1.
const LOG_WRAPPER = 'exec >>"$1" 2>&1; emulator=$2; shift 2; ' +
  '( (while kill -0 "$emulator" && kill -0 $$; do sleep 1; done 2>/dev/null; kill -KILL 0) & ); ' +
  'exec "$@"';
// PID 1 of the machine namespace until it execs the entrypoint: mount home and config.
// PID 1 ignores signals it has no handler for, hence the trap for an early stop.
const NS_INIT = "trap 'exit 143' TERM; " +
  `mount --bind "$1" ${MACHINE_HOME} && mount --bind "$2" ${MACHINE_ETC} || exit 125; ` +
  'shift 2; exec "$@"';

export class HostRuntime implements MachineRuntime {
  #dataDir: string;
  #stopGraceMs: number;
  #containers = new Map<string, Container>();
  #locks = new Map<string, Promise<unknown>>();
  #closed = false;

  constructor(opts: HostRuntimeOptions) {
    this.#dataDir = opts.dataDir;
    this.#stopGraceMs = opts.stopGraceMs ?? 10_000;
  }

  readonly kind = "host";

  async deploy(app: ComposeApp, log: (line: string) => void): Promise<void> {
    const spec = await this.#readSpec(app, log);
    await this.#pull(spec.image, log);
    await this.#up(spec, log);
  }

  async start(app: ComposeApp): Promise<void> {
    const discard = () => {};
    const spec = await this.#readSpec(app, discard);
    await this.#pull(spec.image, discard);
    await this.#up(spec, discard);
  }

  /** What `docker compose` reads: the written file, interpolated with the written .env. */
  async #readSpec(app: ComposeApp, log: (line: string) => void): Promise<MachineSpec> {
    const dir = codeDir(app);
    const file = await Deno.readTextFile(`${dir}/docker-compose.yml`);
    const env = await Deno.readTextFile(`${dir}/.env`).catch(() => "");
    const parsed = machineSpec(file, env, app.appName);
    for (const w of parsed.warnings) {
      log(`time="${new Date().toISOString()}" level=warning msg="${w.replace(/"/g, '\\"')}"`);
    }
    if (!parsed.ok) throw new MachineError(parsed.error);
    return parsed.spec;
  }

  #pull(image: string, log: (line: string) => void): Promise<void> {
    log(" machine Pulling");
    if (image.includes("does-not-exist")) {
      const repo = image.split(":")[0];
      const msg = `pull access denied for ${repo}, repository does not exist or may require ` +
        "'docker login': denied: requested access to the resource is denied";
      log(` machine Error ${msg}`);
      return Promise.reject(new MachineError(`Error response from daemon: ${msg}`));
    }
    log(" machine Pulled");
    return Promise.resolve();
  }

  #up(spec: MachineSpec, log: (line: string) => void): Promise<void> {
    return this.#withLock(spec.appName, async () => {
      if (this.#closed) throw new MachineError("Cannot connect to the Docker daemon");
      const user = await ensureHost();
      const specKey = JSON.stringify(spec);
      const name = containerName(spec.appName);
      checkCpus(spec);
      let c = this.#containers.get(spec.appName);
      if (c?.specKey === specKey && c.info.state === "running") {
        log(` Container ${name}  Running`);
        return;
      }
      for (const v of spec.volumes) {
        const dir = this.#volumeDir(spec.appName, v.source);
        if (!exists(dir)) {
          log(` Volume "${spec.appName}_${v.source}"  Creating`);
          await Deno.mkdir(dir, { recursive: true });
          log(` Volume "${spec.appName}_${v.source}"  Created`);
        }
      }
      if (c && c.specKey !== specKey) {
        log(` Container ${name}  Recreate`);
        await this.#terminate(c, this.#stopGraceMs);
        this.#containers.delete(spec.appName);
        c = undefined;
        await this.#create(spec);
        log(` Container ${name}  Recreated`);
      } else if (!c) {
        log(` Network ${spec.appName}_default  Creating`);
        log(` Network ${spec.appName}_default  Created`);
        log(` Container ${name}  Creating`);
        await this.#create(spec);
        log(` Container ${name}  Created`);
      }
      c = this.#containers.get(spec.appName)!;
      log(` Container ${name}  Starting`);
      this.#checkPort(c);
      c.restarts = 0;
      await this.#start(c, user);
      log(` Container ${name}  Started`);
    });
  }

  stop({ appName }: ComposeApp): Promise<void> {
    return this.#withLock(appName, async () => {
      const c = this.#containers.get(appName);
      if (c) await this.#terminate(c, this.#stopGraceMs);
    });
  }

  remove({ appName }: ComposeApp, opts: { volumes: boolean }): Promise<void> {
    return this.#withLock(appName, async () => {
      const c = this.#containers.get(appName);
      if (c) await this.#terminate(c, this.#stopGraceMs);
      this.#containers.delete(appName);
      await removeDir(this.#machineDir(appName));
      if (opts.volumes) {
        for (const v of (await this.view(appName)).volumes) {
          await removeDir(`${this.#volumesRoot()}/${v}`);
        }
      }
    });
  }

  containers(appName: string): Promise<ContainerRow[]> {
    const c = this.#containers.get(appName);
    return Promise.resolve(
      c
        ? [{
          containerId: c.info.containerId.slice(0, 12),
          name: c.info.name,
          state: c.info.state,
          status: dockerStatus(c.info),
        }]
        : [],
    );
  }

  async logs(container: string, tail: number): Promise<string | null> {
    const c = [...this.#containers.entries()].find(([, c]) =>
      c.info.name.startsWith(container) && c.info.state === "running"
    );
    if (!c) return null;
    const text = await Deno.readTextFile(`${this.#machineDir(c[0])}/container.log`).catch(() => "");
    return text.split("\n").filter(Boolean).slice(-tail).map((l) => `${l}\n`).join("");
  }

  view(appName: string): Promise<MachineView> {
    const c = this.#containers.get(appName);
    return Promise.resolve({
      state: c?.info.state ?? "none",
      exitCode: c?.info.exitCode ?? null,
      publishedPort: c?.info.publishedPort ?? null,
      volumes: listDirs(this.#volumesRoot()).filter((n) => n.startsWith(`${appName}_`)),
    });
  }

  volumeDirs(): Promise<string[]> {
    return Promise.resolve(listDirs(this.#volumesRoot()).map((n) => `${this.#volumesRoot()}/${n}`));
  }

  liveMachines(): Promise<number> {
    return Promise.resolve([...this.#containers.values()].filter((c) => c.proc).length);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#locks.values()]);
    await Promise.all(
      [...this.#containers.values()].map((c) => this.#terminate(c, CLOSE_GRACE_MS)),
    );
  }

  // ---- internals ----

  #volumesRoot() {
    return `${this.#dataDir}/volumes`;
  }

  #volumeDir(appName: string, volume: string) {
    return `${this.#volumesRoot()}/${appName}_${volume}`;
  }

  #machineDir(appName: string) {
    return `${this.#dataDir}/machines/${appName}`;
  }

  /** Serialises operations on one machine (deploy vs start vs stop vs restart). */
  #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    const tail = next.catch(() => {});
    this.#locks.set(key, tail);
    tail.then(() => {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    });
    return next;
  }

  /** A new container: fresh id, fresh container file system, sshd files written. */
  async #create(spec: MachineSpec): Promise<void> {
    const dir = this.#machineDir(spec.appName);
    await removeDir(`${dir}/rootfs`);
    await Deno.mkdir(`${dir}/rootfs/home`, { recursive: true });
    await writeSshFiles(`${dir}/etc`, spec);
    const containerId = Array.from(crypto.getRandomValues(new Uint8Array(32)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    this.#containers.set(spec.appName, {
      info: {
        containerId,
        name: containerName(spec.appName),
        state: "created",
        exitCode: null,
        startedAt: null,
        finishedAt: null,
        publishedPort: spec.publishedPort,
      },
      spec,
      specKey: JSON.stringify(spec),
      proc: null,
      exited: Promise.resolve(),
      stopping: false,
      restarts: 0,
    });
  }

  #checkPort(c: Container) {
    const port = c.spec.publishedPort;
    const taken =
      [...this.#containers.values()].some((o) =>
        o !== c && o.spec.publishedPort === port && (o.proc || o.restartTimer !== undefined)
      ) || !canBind(port);
    if (taken) {
      throw new MachineError(
        `Error response from daemon: driver failed programming external connectivity on ` +
          `endpoint ${c.info.name} (${c.info.containerId}): Bind for 0.0.0.0:${port} failed: ` +
          "port is already allocated",
      );
    }
  }

  async #start(c: Container, user: HostUser): Promise<void> {
    const appName = c.spec.appName;
    const dir = this.#machineDir(appName);
    const homeVolume = c.spec.volumes.find((v) => v.target === MACHINE_HOME);
    const home = homeVolume ? this.#volumeDir(appName, homeVolume.source) : `${dir}/rootfs/home`;
    await Deno.chown(home, user.uid, user.gid);
    await Deno.chmod(home, 0o755);

    const config = `${MACHINE_ETC}/sshd_config`;
    const entry = entrypointArgv(c.spec, config);
    const logPath = `${dir}/container.log`;
    await Deno.writeTextFile(
      logPath,
      `[emulator] ${new Date().toISOString()} starting ${c.info.name} (${entry.mode})\n`,
      { append: true },
    );
    const proc = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        LOG_WRAPPER,
        "devpod-machine",
        logPath,
        String(Deno.pid),
        "unshare",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "/bin/sh",
        "-c",
        NS_INIT,
        "devpod-machine-init",
        home,
        `${dir}/etc`,
        ...entry.argv,
      ],
      clearEnv: true,
      env: {
        PATH,
        HOME: "/root",
        HOSTNAME: c.info.containerId.slice(0, 12),
        ...c.spec.environment,
        // Supervise mode of machine/bootstrap.sh (see machine/README.md): no system
        // setup, sshd listens on the published port itself, state stays per machine.
        DEVPOD_BOOTSTRAP_MODE: "supervise",
        DEVPOD_SSHD_CONFIG: config,
        DEVPOD_SSH_PORT: String(c.spec.publishedPort),
        DEVPOD_SSHD_PORT: String(c.spec.publishedPort),
        DEVPOD_SSHD_LISTEN: "127.0.0.1",
        DEVPOD_STATE_DIR: `${dir}/rootfs/run/devpod`,
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true, // own process group, so stop can signal the whole tree
    }).spawn();
    c.proc = proc;
    c.stopping = false;
    Object.assign(c.info, {
      state: "running",
      exitCode: null,
      startedAt: Date.now(),
      finishedAt: null,
    });
    c.exited = proc.status.then((st) => this.#onExit(c, proc, st.code));
  }

  #onExit(c: Container, proc: Deno.ChildProcess, code: number) {
    if (c.proc !== proc) return;
    c.proc = null;
    signal(-proc.pid, "SIGKILL"); // leftovers of the group, e.g. the guard
    Object.assign(c.info, { state: "exited", exitCode: code, finishedAt: Date.now() });
    if (c.stopping || this.#closed || !restartWanted(c.spec.restart, code)) return;
    if (c.restarts >= MAX_RESTARTS) return;
    c.restartTimer = setTimeout(() => {
      c.restartTimer = undefined;
      this.#withLock(c.spec.appName, async () => {
        const current = this.#containers.get(c.spec.appName) === c;
        if (!current || c.stopping || this.#closed || c.proc) return;
        c.restarts++;
        await this.#start(c, await ensureHost());
      }).catch(() => {});
    }, RESTART_DELAY_MS);
  }

  /** docker stop: SIGTERM to the machine's PID 1, then SIGKILL to the whole group. */
  async #terminate(c: Container, graceMs: number): Promise<void> {
    c.stopping = true;
    clearTimeout(c.restartTimer);
    c.restartTimer = undefined;
    const proc = c.proc;
    if (!proc) return;
    // The spawned pid is unshare; its child is PID 1 of the machine namespace.
    // SIGTERM is repeated because one sent while PID 1 is between exec and installing
    // its handler is lost (a just-started machine); a PID 1 that ignores it waits out
    // the grace period, as with docker.
    const deadline = Date.now() + graceMs;
    let exited = false;
    while (!exited && Date.now() < deadline) {
      signal(namespaceInit(proc.pid) ?? -proc.pid, "SIGTERM");
      exited = await settlesWithin(c.exited, Math.min(250, deadline - Date.now()));
    }
    if (!exited) {
      signal(-proc.pid, "SIGKILL"); // unshare and PID 1: the kernel then kills the namespace
      await c.exited;
    }
  }
}

/** Docker's units.HumanDuration, as in `docker ps` STATUS. */
function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  if (h < 24 * 14) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 60) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 730) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

function dockerStatus(c: ContainerInfo, at = Date.now()): string {
  if (c.state === "running") return `Up ${humanDuration(at - (c.startedAt ?? at))}`;
  if (c.state === "exited") {
    return `Exited (${c.exitCode}) ${humanDuration(at - (c.finishedAt ?? at))} ago`;
  }
  return "Created";
}

function containerName(appName: string) {
  return `${appName}-machine-1`;
}

/**
 * What runs as the machine's PID 1. A bootstrap that knows supervise mode (it reads
 * DEVPOD_BOOTSTRAP_MODE / DEVPOD_SSHD_CONFIG) runs as the real machine would run it;
 * anything else is replaced by a plain sshd with the emulator's config.
 */
function entrypointArgv(spec: MachineSpec, config: string): { argv: string[]; mode: string } {
  const argv = [...(spec.entrypoint ?? []), ...(spec.command ?? [])];
  const shell = argv[0]?.split("/").pop() ?? "";
  const isBootstrap = ["sh", "bash", "dash", "ash"].includes(shell) && argv[1] === "-c" &&
    /DEVPOD_(BOOTSTRAP_MODE|SSHD_CONFIG)/.test(argv[2] ?? "");
  if (isBootstrap) {
    const path = argv[0].startsWith("/") && exists(argv[0]) ? argv[0] : "/bin/sh";
    return { argv: [path, "-c", argv[2], ...argv.slice(3)], mode: "bootstrap, supervise mode" };
  }
  return { argv: ["/usr/sbin/sshd", "-D", "-e", "-f", config], mode: "plain sshd fallback" };
}

/** Docker refuses a CPU limit above the host's CPUs when it creates the container. */
function checkCpus(spec: MachineSpec) {
  const host = navigator.hardwareConcurrency;
  if (spec.cpus !== null && spec.cpus > host) {
    throw new MachineError(
      `Error response from daemon: Range of CPUs is from 0.01 to ${host.toFixed(2)}, ` +
        `as there are only ${host} CPUs available`,
    );
  }
}

function restartWanted(policy: string, code: number): boolean {
  if (policy === "always" || policy === "unless-stopped") return true;
  return policy.startsWith("on-failure") && code !== 0;
}

/** Host key, authorized key and sshd_config, in a root-owned 0755 dir. */
async function writeSshFiles(etc: string, spec: MachineSpec): Promise<void> {
  await Deno.mkdir(etc, { recursive: true });
  await Deno.chmod(etc, 0o755);
  const hostKey = `${etc}/ssh_host_ed25519_key`;
  await Deno.remove(hostKey).catch(() => {});
  const pem = decodeHostKey(spec.environment.DEVPOD_HOST_KEY_B64);
  if (pem) {
    await Deno.writeTextFile(hostKey, pem, { mode: 0o600 });
  } else {
    // No usable key supplied: make one, as a bootstrap would on first boot.
    const out = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-f", hostKey],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new MachineError(new TextDecoder().decode(out.stderr));
  }
  await Deno.chmod(hostKey, 0o600);
  const authorized = `${etc}/authorized_keys`;
  await Deno.writeTextFile(authorized, `${spec.environment.DEVPOD_AUTHORIZED_KEY ?? ""}\n`);
  await Deno.chmod(authorized, 0o644);
  await Deno.writeTextFile(
    `${etc}/sshd_config`,
    renderSshdConfig({
      port: spec.publishedPort,
      hostKeyPath: `${MACHINE_ETC}/ssh_host_ed25519_key`,
      authorizedKeysPath: `${MACHINE_ETC}/authorized_keys`,
      user: MACHINE_USER,
    }),
  );
}

function decodeHostKey(b64: string | undefined): string | null {
  if (!b64) return null;
  try {
    const text = atob(b64.replace(/\s+/g, ""));
    if (!text.includes("PRIVATE KEY-----")) return null;
    return text.endsWith("\n") ? text : `${text}\n`;
  } catch {
    return null;
  }
}

function canBind(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function listDirs(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].filter((e) => e.isDirectory).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function removeDir(path: string) {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}
