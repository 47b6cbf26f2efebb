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
