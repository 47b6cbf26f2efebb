/** Process-tree helpers for the host runtime (Linux /proc). */

/** Pids whose parent is `ppid`. */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // Fields after the ")" closing the command name: state ppid ...
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === ppid) out.push(Number(entry.name));
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

/** The child of `ppid` that is PID 1 of its own PID namespace (what unshare --fork made). */
export function namespaceInit(ppid: number): number | undefined {
  return childPids(ppid).find((pid) => {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/) ?? [];
      return nspid.length > 1 && nspid[nspid.length - 1] === "1";
    } catch {
      return false;
    }
  });
}

/** Sends a signal, ignoring "no such process". */
export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every live descendant of `root` (not `root` itself), from one scan of /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry.name));
      children.set(ppid, list);
    } catch {
      // the process exited while we looked
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/**
 * Stops (SIGSTOP) `root` and its whole process tree, whatever sessions and process groups
 * its members made. A stopped process cannot fork, so a few rounds catch the children
 * made while the tree was being walked.
 */
export function freezeTree(root: number): void {
  const stopped = new Set<number>();
  for (let round = 0; round < 20; round++) {
    const fresh = [root, ...descendants(root)].filter((pid) => !stopped.has(pid));
    if (!fresh.length) return;
    for (const pid of fresh) {
      signal(pid, "SIGSTOP");
      stopped.add(pid);
    }
  }
}

/** Resumes (SIGCONT) `root` and its whole process tree. */
export function thawTree(root: number): void {
  for (const pid of [root, ...descendants(root)]) signal(pid, "SIGCONT");
}

/**
 * Runs as the process Deno spawns for a container: sends all output to the container log,
 * starts a guard that kills this process group if the emulator dies without close(), and
 * becomes unshare. The guard is double-forked so that unshare's only child stays PID 1.
 * Arguments: log path, the emulator's pid, then the command.
 */
export const LOG_WRAPPER = 'exec >>"$1" 2>&1; emulator=$2; shift 2; ' +
  '( (while kill -0 "$emulator" && kill -0 $$; do sleep 1; done 2>/dev/null; kill -KILL 0) & ); ' +
  'exec "$@"';

/** A restart policy's "restart after this exit" (docker's restart manager, simplified). */
export const MAX_RESTARTS = 5;
export const RESTART_DELAY_MS = 1000;

export function restartWanted(policy: string, code: number): boolean {
  if (policy === "always" || policy === "unless-stopped") return true;
  return policy.startsWith("on-failure") && code !== 0;
}

/** Whether `p` settles within `ms`. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
