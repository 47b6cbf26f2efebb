/**
 * What dockerd itself changes on a host where it starts: when IPv4 forwarding is off it
 * turns it on and sets the FORWARD chain's policy to DROP, and leaves both so when it
 * stops. For a daemon this project starts, the host's values are recorded before the start
 * and put back after the stop, so a run leaves the host's forwarding as it found it.
 */
import { run } from "./run.ts";

const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

export interface Forwarding {
  ipForward: string;
  /** The FORWARD chain's policy (ACCEPT, DROP); null when iptables cannot say. */
  policy: string | null;
}

async function current(): Promise<Forwarding> {
  const ipForward = (await Deno.readTextFile(IP_FORWARD).catch(() => "")).trim();
  const r = await run("iptables", ["-w", "-S", "FORWARD"]).catch(() => null);
  const policy = r?.code === 0 ? /^-P FORWARD (\S+)$/m.exec(r.stdout)?.[1] ?? null : null;
  return { ipForward, policy };
}

/** Records the host's forwarding in `file` unless a record is there (an unfinished run's). */
export async function recordForwarding(file: string): Promise<void> {
  try {
    await Deno.writeTextFile(file, JSON.stringify(await current()), { createNew: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
}

/** Puts back what `recordForwarding` saw, then drops the record; what changed, for the log. */
export async function restoreForwarding(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(file).catch(() => null);
  if (text === null) return [];
  const before = JSON.parse(text) as Forwarding;
  const now = await current();
  const changed: string[] = [];
  if (before.policy && now.policy && before.policy !== now.policy) {
    const r = await run("iptables", ["-w", "-P", "FORWARD", before.policy]);
    if (r.code === 0) changed.push(`FORWARD policy ${before.policy}`);
  }
  if (before.ipForward && before.ipForward !== now.ipForward) {
    await Deno.writeTextFile(IP_FORWARD, before.ipForward);
    changed.push(`net.ipv4.ip_forward=${before.ipForward}`);
  }
  await Deno.remove(file).catch(() => {});
  return changed;
}
