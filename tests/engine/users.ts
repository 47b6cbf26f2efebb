/**
 * Which processes use the test engine: one file per process in `dir`, named by its pid and
 * holding its start time (a pid can be reused; pid and start time cannot). The engine is
 * torn down only by its last live user, so a run that ends cannot take the engine from a
 * run still going (`--parallel` test files share one process, hence one user).
 */
import { join } from "node:path";

/** Field 22 of /proc/PID/stat (clock ticks since boot); null when there is no such process. */
export function startTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

export async function addUser(dir: string, pid = Deno.pid): Promise<void> {
  const started = startTime(pid);
  if (started === null) return;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, String(pid)), started);
}

export async function removeUser(dir: string, pid = Deno.pid): Promise<void> {
  await Deno.remove(join(dir, String(pid))).catch(() => {});
}

/** The pids of live users; files of processes that are gone are removed. */
export async function liveUsers(dir: string): Promise<number[]> {
  const live: number[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const pid = Number(entry.name);
      const recorded = await Deno.readTextFile(join(dir, entry.name)).catch(() => null);
      if (pid > 0 && recorded !== null && startTime(pid) === recorded.trim()) live.push(pid);
      else await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return live.sort((a, b) => a - b);
}

/** Forgets every user (a forced `engine down`). */
export async function clearUsers(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** `ps`-like `pid command…` of a user, for messages. */
export function describeUser(pid: number): string {
  try {
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
    return `${pid} (${argv.join(" ").slice(0, 120)})`;
  } catch {
    return String(pid);
  }
}
