/** Where DevPod keeps machine folders, to tell live machines from orphans. */
import { join } from "node:path";

export function devpodHome(env: Readonly<Record<string, string | undefined>>): string {
  return env.DEVPOD_HOME ?? join(env.HOME ?? env.USERPROFILE ?? ".", ".devpod");
}

/** Machine ids that have a folder in any DevPod context. */
export async function localMachineIds(home: string): Promise<Set<string>> {
  const ids = new Set<string>();
  try {
    for await (const ctx of Deno.readDir(join(home, "contexts"))) {
      if (!ctx.isDirectory) continue;
      try {
        for await (const m of Deno.readDir(join(home, "contexts", ctx.name, "machines"))) {
          if (m.isDirectory) ids.add(m.name);
        }
      } catch { /* a context without machines */ }
    }
  } catch { /* no DevPod home at all: every machine is an orphan */ }
  return ids;
}

/** The folders DevPod keeps for machine `machineId`, one per context that has it. */
export async function machineFolders(home: string, machineId: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const ctx of Deno.readDir(join(home, "contexts"))) {
      const folder = join(home, "contexts", ctx.name, "machines", machineId);
      if (ctx.isDirectory && await Deno.stat(folder).then((s) => s.isDirectory, () => false)) {
        found.push(folder);
      }
    }
  } catch { /* no DevPod home here */ }
  return found;
}
