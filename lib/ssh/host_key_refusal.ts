/**
 * A host-key refusal seen by `command`, kept in the machine folder so that `status`
 * can report it. While DevPod injects its agent it hides `command`'s stderr and shows
 * only "Waiting for devpod agent to come up..." for minutes; a failing `status` it
 * does print. Loads nothing heavy: `command` uses it on every tunnel.
 */
import { join } from "node:path";
import { HostKeyMismatchError } from "../errors.ts";
import { readTextIfExists, removeIfExists, writeFileAtomic } from "../fs.ts";
import type { MachineContext } from "../context/machine.ts";
import { sshTarget } from "../machine/ssh_target.ts";
import { type MachineState, readState } from "../machine/state.ts";
import { HOST_KEY_REFUSED, hostKeyRefusedMessage } from "./host_key.ts";
import { sshProbe, tcpOpen } from "./ready.ts";

export const REFUSAL_FILE = "host_key_refused.json";

/** ssh's exit code for its own failures; any other code is the remote command's. */
const SSH_FAILED = 255;

/** The address and the pinned key a refusal was seen for. */
interface Refusal {
  sshHost: string;
  sshPort: number;
  hostKeyFingerprint: string;
  seenAt: string;
}

/**
 * After `command`'s ssh ended: records a host-key refusal and returns the line to show,
 * or, when ssh got through (the pinned key matched), forgets an earlier refusal.
 */
export async function noteSshOutcome(
  folder: string,
  state: MachineState,
  exitCode: number,
  stderrTail: string,
): Promise<string | null> {
  if (exitCode === SSH_FAILED && HOST_KEY_REFUSED.test(stderrTail)) {
    const refusal: Refusal = {
      sshHost: state.sshHost,
      sshPort: state.sshPort,
      hostKeyFingerprint: state.hostKeyFingerprint,
      seenAt: new Date().toISOString(),
    };
    await writeFileAtomic(join(folder, REFUSAL_FILE), JSON.stringify(refusal) + "\n", 0o600);
    return hostKeyRefusedMessage(state.sshHost, state.sshPort);
  }
  if (exitCode !== SSH_FAILED) await clearHostKeyRefusal(folder);
  return null;
}

/**
 * For `status`: throws while a recorded refusal still holds — same address and pinned
 * key as the machine's state, and a fresh ssh there is still refused. Anything else
 * (machine recreated or moved, port closed, ssh gets through) ends the diagnosis, so
 * a refusal that is over can never block DevPod.
 */
export async function assertNoHostKeyRefusal(machine: MachineContext): Promise<void> {
  const text = await readTextIfExists(join(machine.machineFolder, REFUSAL_FILE));
  if (text === null) return;
  const refusal = parseRefusal(text);
  const state = await readState(machine.machineFolder).catch(() => null);
  if (refusal && state && sameIdentity(refusal, state)) {
    const target = sshTarget(machine, state);
    const stillRefused = await tcpOpen(target.host, target.port) &&
      HOST_KEY_REFUSED.test((await sshProbe(target, 5)).stderr);
    if (stillRefused) {
      throw new HostKeyMismatchError(hostKeyRefusedMessage(state.sshHost, state.sshPort));
    }
  }
  await clearHostKeyRefusal(machine.machineFolder);
}

export async function clearHostKeyRefusal(folder: string): Promise<void> {
  await removeIfExists(join(folder, REFUSAL_FILE));
}

/**
 * Wraps a lifecycle verb that ends with ssh through the pinned key (create, start) or
 * removes the machine (delete): once it succeeds, an earlier refusal is over.
 */
export function clearingRefusal<D extends { machine: MachineContext }>(
  verb: (d: D) => Promise<void>,
): (d: D) => Promise<void> {
  return async (d) => {
    await verb(d);
    await clearHostKeyRefusal(d.machine.machineFolder);
  };
}

function parseRefusal(text: string): Refusal | null {
  try {
    return JSON.parse(text) as Refusal;
  } catch {
    return null;
  }
}

function sameIdentity(r: Refusal, s: MachineState): boolean {
  return r.sshHost === s.sshHost && r.sshPort === s.sshPort &&
    r.hostKeyFingerprint === s.hostKeyFingerprint;
}
