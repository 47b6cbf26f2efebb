/**
 * `command`: DevPod's stdio tunnel (devpod-protocol.md §3.9). ssh inherits our stdin
 * and stdout directly — no copying, no buffering, no TTY — so the pipe is binary-safe
 * and stdin EOF reaches the remote. We print nothing to stdout and exit with the
 * remote command's exit code. Needs no Dokploy call: the state file has the address.
 *
 * ssh's stderr passes through us (minus OpenSSH's advice to remove the pinned key) so
 * that a host-key refusal is noticed and recorded for `status`, the one place DevPod
 * shows it while it injects its agent (lib/ssh/host_key_refusal.ts).
 *
 * Each call is independent (DevPod runs several at once, re-runs the same COMMAND, and
 * the maintained fork leaves an injecting call running beside the re-run, its stdout
 * closed): nothing here is shared but the SSH master connection, which OpenSSH
 * arbitrates. A reader that goes away ends ssh at its next write (EPIPE). SIGINT or
 * SIGTERM — the fork's cancel is SIGINT, then SIGKILL 2 s later — ends ssh before we
 * exit, so no orphaned ssh keeps DevPod's pipes open and the remote sees its EOF.
 */
import { loadMachineContext, reuseConnections } from "../lib/context/machine.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { ConfigError, StateError } from "../lib/errors.ts";
import { noteSshOutcome } from "../lib/ssh/host_key_refusal.ts";
import { sshTarget } from "../lib/machine/ssh_target.ts";
import { readState } from "../lib/machine/state.ts";
import { childEnv } from "../lib/process.ts";
import { sshArgv } from "../lib/ssh/argv.ts";
import { muxOptions } from "../lib/ssh/mux.ts";
import { relayStderr } from "../lib/ssh/stderr_relay.ts";

/** How long ssh's stderr is still read after ssh exited (see below). */
const STDERR_GRACE_MS = 1000;

export async function run(ctx: CommandContext): Promise<number> {
  const machine = loadMachineContext(ctx.env);
  const remoteCommand = ctx.env.COMMAND;
  if (!remoteCommand) {
    throw new ConfigError(
      "COMMAND is not set; DevPod sets it to the command to run on the machine",
    );
  }
  const state = await readState(machine.machineFolder);
  if (!state) {
    throw new StateError(
      `no machine state in ${machine.machineFolder}; the machine was not created by this provider or was deleted (run 'devpod up' again)`,
    );
  }
  const child = new Deno.Command("ssh", {
    args: [
      ...await muxOptions(machine.machineFolder, reuseConnections(ctx.env)),
      ...sshArgv(sshTarget(machine, state)),
      remoteCommand,
    ],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "piped",
    // The token must not reach ssh or the machine: give ssh only what it needs.
    clearEnv: true,
    env: childEnv(),
  }).spawn();
  // Normally ends with ssh. But a shared master holds each session's stdio (passed by
  // the client) until the remote command ends, which one that reads no stdin may never
  // do: once ssh is gone, what is still in the pipe is read, then no longer waited for.
  const relayDone = new AbortController();
  const stderrTail = relayStderr(child.stderr, writeStderr, undefined, relayDone.signal)
    .catch(() => "");
  const status = await endingWith(ctx.signal, child);
  const grace = setTimeout(() => relayDone.abort(), STDERR_GRACE_MS);
  const tail = await stderrTail;
  clearTimeout(grace);
  // Bookkeeping for `status`: it must never change the tunnel's exit code.
  const refused = await noteSshOutcome(machine.machineFolder, state, status.code, tail)
    .catch(() => null);
  if (refused) ctx.log.info(refused);
  return status.code;
}

/** The child's exit; an abort (our SIGINT/SIGTERM) passes on to it as SIGTERM. */
async function endingWith(
  signal: AbortSignal,
  child: Deno.ChildProcess,
): Promise<Deno.CommandStatus> {
  const stop = () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  };
  if (signal.aborted) stop();
  signal.addEventListener("abort", stop, { once: true });
  try {
    return await child.status;
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

const writeStderr = (bytes: Uint8Array) => {
  try {
    for (let off = 0; off < bytes.length;) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch { /* DevPod closed our stderr: the tunnel itself is what matters */ }
};
