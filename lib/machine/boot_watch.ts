/**
 * Watching the machine's container while waiting for SSH. When the bootstrap fails
 * (say, an image without sshd that cannot install packages) it exits 1 and Docker
 * restarts it in a loop (`restart: on-failure`): SSH never answers, and waiting out
 * READY_TIMEOUT would end by blaming the network. So while the SSH wait runs, the
 * container is polled through Dokploy and a boot that keeps failing ends the wait early,
 * with where to read the machine's log.
 */
import { machineContainers } from "./status.ts";
import type { Container } from "../dokploy/api.ts";
import { DokployError, MachineBootError } from "../errors.ts";
import { sleep, waitUntilReachable } from "../ssh/ready.ts";
import type { MachineDeps } from "./deps.ts";
import { composeName } from "./naming.ts";
import { sshTarget } from "./ssh_target.ts";
import type { MachineState } from "./state.ts";

/** Each poll is one API call: often enough to fail fast, not more. */
export const POLL_MS = 1500;
/**
 * A single failure Docker recovers from is tolerated: a verdict needs failing polls at
 * least this far apart (Docker's first restarts come 0.1-0.8 s after the exit).
 */
export const CONFIRM_MS = 2000;

export type ContainerView = Pick<Container, "name" | "state" | "status">;

/** One poll: when it answered and the containers it listed (docker ps -a). */
export interface BootObservation {
  at: number;
  containers: readonly ContainerView[];
}

/** The boot cannot succeed: the container failed, or stopped by itself with exit code 0. */
export type BootFailure =
  | {
    kind: "failed";
    container: string;
    how: "restarting" | "exited" | "dead";
    exitCode: number | null;
  }
  | { kind: "stopped"; container: string };

export type BootVerdict = { kind: "waiting" } | BootFailure;

const WAITING: BootVerdict = { kind: "waiting" };
const EXIT_CODE = /^(?:exited|restarting) \((-?\d+)\)/i;

function exitCodeOf(c: ContainerView): number | null {
  const m = EXIT_CODE.exec(c.status ?? "");
  return m ? Number(m[1]) : null;
}

/** What one container says: up, a boot failure, or nothing yet (created, paused…). */
function readContainer(c: ContainerView): "up" | BootFailure | null {
  const state = c.state.toLowerCase();
  const container = c.name;
  if (state === "restarting" || /^restarting/i.test(c.status ?? "")) {
    return { kind: "failed", container, how: "restarting", exitCode: exitCodeOf(c) };
  }
  if (state === "running") return "up";
  if (state === "dead") return { kind: "failed", container, how: "dead", exitCode: exitCodeOf(c) };
  if (state === "exited") {
    const exitCode = exitCodeOf(c);
    return exitCode === 0
      ? { kind: "stopped", container }
      : { kind: "failed", container, how: "exited", exitCode };
  }
  return null;
}

/** One poll's reading; `[]` (Dokploy's answer to any Docker error) says nothing. */
function readObservation(o: BootObservation): "up" | BootFailure | null {
  const read = o.containers.map(readContainer);
  if (read.includes("up")) return "up";
  const failures = read.filter((r): r is BootFailure => r !== null && r !== "up");
  return failures.find((f) => f.kind === "failed") ?? failures[0] ?? null;
}

/**
 * How long a container has been up, from docker's "Up 3 seconds" (units.HumanDuration),
 * as [at least, less than] seconds; null when the status says no more than "days".
 */
export function uptimeRange(status: string | null | undefined): [number, number] | null {
  const m = /^Up (.+?)(?: \(.*\))?$/.exec(status ?? "");
  if (!m) return null;
  const text = m[1];
  if (text === "Less than a second") return [0, 1];
  if (text === "About a minute") return [60, 120];
  if (text === "About an hour") return [3600, 7200];
  const n = /^(\d+) (second|minute|hour)s?$/.exec(text);
  if (!n) return null;
  const unit = { second: 1, minute: 60, hour: 3600 }[n[2] as "second" | "minute" | "hour"];
  return [Number(n[1]) * unit, (Number(n[1]) + 1) * unit];
}

/** Slack for the time between Docker reading the clock and our poll returning. */
const UPTIME_SLACK_S = 1;

/**
 * Each poll that shows a failure: a failed or self-stopped container, or one that runs
 * but whose uptime went back since the previous poll. A bootstrap that fails slowly (apt
 * timing out for a minute) shows "restarting" only for Docker's 0.1 s back-off, so the
 * reset uptime is what gives the restart away.
 */
function failureEvents(seen: readonly BootObservation[]): { at: number; failure: BootFailure }[] {
  const events: { at: number; failure: BootFailure }[] = [];
  let previousUp: { at: number; name: string; uptime: [number, number] } | null = null;
  for (const o of seen) {
    const read = readObservation(o);
    if (read === "up") {
      const c = o.containers.find((c) => readContainer(c) === "up")!;
      const uptime = uptimeRange(c.status);
      const elapsed = previousUp ? (o.at - previousUp.at) / 1000 : 0;
      if (
        previousUp && uptime && previousUp.name === c.name &&
        uptime[1] + UPTIME_SLACK_S < previousUp.uptime[0] + elapsed
      ) {
        const failure: BootFailure = {
          kind: "failed",
          container: c.name,
          how: "restarting",
          exitCode: null,
        };
        events.push({ at: o.at, failure });
      }
      previousUp = uptime ? { at: o.at, name: c.name, uptime } : null;
    } else if (read !== null) {
      events.push({ at: o.at, failure: read });
      previousUp = null;
    }
  }
  return events;
}

/**
 * The verdict over the polls so far: the latest poll shows a failure (see failureEvents)
 * and an earlier one at least CONFIRM_MS before it did too. A container running without
 * a restart, or no information, keeps the wait going.
 */
export function judgeBoot(seen: readonly BootObservation[]): BootVerdict {
  const last = seen.at(-1);
  const events = failureEvents(seen);
  const latest = events.at(-1);
  if (!last || !latest || latest.at !== last.at) return WAITING;
  const confirmed = events.some((e) => last.at - e.at >= CONFIRM_MS);
  return confirmed ? latest.failure : WAITING;
}

/** Where the user reads what went wrong, and what to change. */
export interface BootContext {
  projectName: string;
  serviceName: string;
  image: string;
}

export function bootFailureMessage(f: BootFailure, where: BootContext): string {
  const log =
    `read its log in Dokploy: project "${where.projectName}" → service "${where.serviceName}" → Logs (container ${f.container})`;
  if (f.kind === "stopped") {
    return `the machine's container stopped by itself (exit code 0) before SSH answered; ${log}; a very short INACTIVITY_TIMEOUT or MACHINE_IMAGE ${where.image} may be the cause`;
  }
  const code = f.exitCode ?? "unknown";
  const what = f.how === "restarting"
    ? `keeps restarting (exit code ${code})`
    : f.how === "dead"
    ? "is dead"
    : `exited with code ${code}`;
  return `the machine's container ${what}: its bootstrap failed (e.g. the image lacks sshd and cannot install packages); ${log}; MACHINE_IMAGE ${where.image} may be the cause`;
}

export interface WatchOptions {
  signal: AbortSignal;
  deadline: number;
  intervalMs?: number;
  /** Injected in tests: a clock and a pause that follow it. */
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Polls until the boot fails (its verdict) or the signal or deadline ends the watch (null). */
export async function watchBoot(
  observe: () => Promise<readonly ContainerView[]>,
  o: WatchOptions,
): Promise<BootFailure | null> {
  const now = o.now ?? Date.now;
  const pause = o.sleep ?? sleep;
  const seen: BootObservation[] = [];
  while (!o.signal.aborted && now() < o.deadline) {
    try {
      const containers = await observe();
      seen.push({ at: now(), containers });
    } catch (err) {
      // The watch only advises: a failed poll is no evidence, the SSH wait goes on.
      if (!(err instanceof DokployError)) throw err;
    }
    const verdict = judgeBoot(seen);
    if (verdict.kind !== "waiting") return verdict;
    await pause(o.intervalMs ?? POLL_MS, o.signal);
  }
  return null;
}

/**
 * Runs the SSH wait and the container watch together; whichever concludes first stops
 * the other. A machine whose SSH answered is up, even if the watch concluded a moment
 * earlier. Null when SSH answered; the SSH wait's own error (timeout, host key,
 * interrupt) when it failed and the watch found nothing.
 */
export async function raceBootAgainstSsh(
  waitSsh: (signal: AbortSignal) => Promise<unknown>,
  watch: (signal: AbortSignal) => Promise<BootFailure | null>,
  signal: AbortSignal,
): Promise<BootFailure | null> {
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const ssh = waitSsh(both);
  const answered = ssh.then(() => true, () => false);
  const watched = watch(both);
  watched.catch(() => {}); // settled after the race is decided: nobody else awaits it
  try {
    const failure = await Promise.race([answered.then(() => null), watched]);
    if (failure) {
      stop.abort();
      return (await answered) ? null : failure;
    }
    // SSH settled first, or the watch reached the deadline: SSH has the last word.
    await ssh;
    return null;
  } finally {
    stop.abort();
  }
}

/** Waits until the machine answers SSH with its pinned key; fails early when it cannot boot. */
export async function waitForMachine(
  d: MachineDeps,
  state: MachineState,
  deadline: number,
): Promise<void> {
  const failure = await raceBootAgainstSsh(
    (signal) =>
      waitUntilReachable(sshTarget(d.machine, state), {
        timeoutMs: Math.max(1000, deadline - Date.now()),
        signal,
        log: d.log,
      }),
    (signal) =>
      watchBoot(
        async () => machineContainers(await d.api.containers(state.appName, state.serverId)),
        { signal, deadline },
      ),
    d.signal,
  );
  if (failure) {
    const message = bootFailureMessage(failure, {
      projectName: d.config.projectName,
      serviceName: composeName(d.machine.machineId),
      image: d.config.image,
    });
    throw new MachineBootError(message + await logTail(d, state, failure.container));
  }
}

const LOG_LINES = 6;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT[\d:.]+Z\s*/;

/**
 * The end of the container's log, said with the failure: a failed create removes the
 * service, and with it the log the message points to. Best effort: Dokploy < v0.29 has
 * no such call, and it finds only a container that is (re)starting right now.
 */
async function logTail(d: MachineDeps, state: MachineState, container: string): Promise<string> {
  try {
    const text = await d.api.containerLog(state.composeId, container, 30);
    const lines = text.split("\n").map((l) => l.replace(TIMESTAMP, "").trim()).filter(Boolean);
    // A restart loop repeats itself: each line once, where it last appeared.
    const distinct = lines.filter((l, i) => lines.lastIndexOf(l) === i);
    return distinct.length ? `; its log ends: ${distinct.slice(-LOG_LINES).join(" | ")}` : "";
  } catch (err) {
    if (err instanceof DokployError) return "";
    throw err;
  }
}
