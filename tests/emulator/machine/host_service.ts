/**
 * A compose service the host runtime really runs besides the machine: the provider's
 * backup guard (label `dev.devpod.role: backup-guard`). Like a container it gets its own
 * mount and PID namespace with its named volumes bind-mounted at their targets (read-only
 * where `:ro`), no network with `network_mode: none` (a fresh network namespace), its
 * stdout/stderr as its log, its restart policy, and on stop SIGTERM to its PID 1 with
 * `stop_grace_period` (docker's 10 s by default) before SIGKILL. Its entrypoint runs as
 * PID 1, which ignores a signal it has no handler for, as in docker.
 *
 * A target missing on the host is created there (an empty directory) to mount onto.
 */
import type { RunSpec } from "../compose_spec.ts";
import {
  freezeTree,
  LOG_WRAPPER,
  MAX_RESTARTS,
  namespaceInit,
  RESTART_DELAY_MS,
  restartWanted,
  settlesWithin,
  signal,
  thawTree,
} from "./process.ts";
import { SERVER_PATH } from "./runtime.ts";

/** The parts of a container record the process keeps up to date. */
export interface ProcessInfo {
  containerId: string;
  name: string;
  state: "created" | "running" | "exited";
  exitCode: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface HostMount {
  source: string;
  target: string;
  readOnly: boolean;
}

const DEFAULT_GRACE_MS = 10_000;

// PID 1 of the service's namespaces until it execs the entrypoint: mount the volumes.
// Arguments: the number of mounts, then source target ro|rw for each, then the argv.
const SERVICE_INIT = "trap 'exit 143' TERM; n=$1; shift; " +
  'while [ "$n" -gt 0 ]; do ' +
  'mkdir -p "$2" && mount --bind "$1" "$2" || exit 125; ' +
  'if [ "$3" = ro ]; then mount -o remount,bind,ro "$2" || exit 125; fi; ' +
  "shift 3; n=$((n - 1)); done; " +
  'exec "$@"';

export class ServiceProcess {
  #proc: Deno.ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #stopping = false;
  #restarts = 0;
  #restartTimer?: ReturnType<typeof setTimeout>;
  #frozen = false;

  constructor(
    readonly info: ProcessInfo,
    private run: RunSpec,
    private restart: string,
    private mounts: HostMount[],
    readonly logPath: string,
  ) {}

  get graceMs(): number {
    return this.run.stopGraceMs ?? DEFAULT_GRACE_MS;
  }

  get running(): boolean {
    return this.#proc !== null;
  }

  /** docker start: a fresh PID 1 (a stopped one first resets its restart count). */
  async start(): Promise<void> {
    if (this.#proc) return;
    this.#stopping = false;
    this.#restarts = 0;
    await this.#spawn();
  }

  async #spawn(): Promise<void> {
    const argv = [...this.run.entrypoint ?? [], ...this.run.command ?? []];
    await Deno.writeTextFile(
      this.logPath,
      `[emulator] ${new Date().toISOString()} starting ${this.info.name}\n`,
      { append: true },
    );
    const unshare = ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc"];
    if (this.run.networkMode === "none") unshare.push("--net");
    const mountArgs = this.mounts.flatMap((m) => [m.source, m.target, m.readOnly ? "ro" : "rw"]);
    const proc = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        LOG_WRAPPER,
        "devpod-service",
        this.logPath,
        String(Deno.pid),
        "unshare",
        ...unshare,
        "/bin/sh",
        "-c",
        SERVICE_INIT,
        "devpod-service-init",
        String(this.mounts.length),
        ...mountArgs,
        // No entrypoint: docker would run the image's; the host has none to offer.
        ...(argv.length ? argv : ["/bin/sh", "-c", "echo 'emulator: no entrypoint' >&2; exit 127"]),
      ],
      clearEnv: true,
      env: {
        PATH: SERVER_PATH,
        HOME: "/root",
        HOSTNAME: this.info.containerId.slice(0, 12),
        ...this.run.environment,
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    this.#proc = proc;
    Object.assign(this.info, {
      state: "running",
      exitCode: null,
      startedAt: Date.now(),
      finishedAt: null,
    });
    this.#exited = proc.status.then((st) => this.#onExit(proc, st.code));
  }

  #onExit(proc: Deno.ChildProcess, code: number) {
    if (this.#proc !== proc) return;
    this.#proc = null;
    this.#frozen = false;
    signal(-proc.pid, "SIGKILL"); // leftovers of the group, e.g. the guard loop
    Object.assign(this.info, { state: "exited", exitCode: code, finishedAt: Date.now() });
    if (this.#stopping || !restartWanted(this.restart, code)) return;
    if (this.#restarts >= MAX_RESTARTS) return;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopping || this.#proc) return;
      this.#restarts++;
      this.#spawn().catch(() => {});
    }, RESTART_DELAY_MS);
  }

  /** docker stop: SIGTERM to PID 1 (repeated: one sent before its trap is set is lost). */
  async stop(graceMs = this.graceMs): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const proc = this.#proc;
    if (!proc) return;
    this.freeze(false);
    const deadline = Date.now() + graceMs;
    let exited = false;
    while (!exited && Date.now() < deadline) {
      signal(namespaceInit(proc.pid) ?? -proc.pid, "SIGTERM");
      exited = await settlesWithin(this.#exited, Math.min(250, deadline - Date.now()));
    }
    if (!exited) {
      signal(-proc.pid, "SIGKILL");
      await this.#exited;
    }
  }

  /** Its server went away (SIGSTOP to the tree) or came back (SIGCONT). */
  freeze(frozen: boolean): void {
    const proc = this.#proc;
    if (proc && frozen && !this.#frozen) freezeTree(proc.pid);
    if (proc && !frozen && this.#frozen) thawTree(proc.pid);
    this.#frozen = frozen && proc !== null;
  }
}
