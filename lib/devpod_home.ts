/**
 * Where DevPod (or Devsy, its maintained successor) keeps machine folders, to tell this
 * computer's live machines from orphans. Devsy renamed DEVPOD_HOME to DEVSY_HOME and
 * ~/.devpod to ~/.devsy with no fallback, so every place either keeps one is looked at; a
 * home that cannot be found is an error for `cleanup`, never "every machine is an orphan".
 */
import { dirname, join, resolve } from "node:path";
import type { Env } from "./context/machine.ts";
import { ConfigError } from "./errors.ts";

/** Every folder that may be a DevPod or Devsy home, in order, without repeats. */
export function candidateHomes(env: Env): string[] {
  const user = env.HOME ?? env.USERPROFILE;
  const homes = [
    env.DEVPOD_HOME,
    env.DEVSY_HOME,
    // DevPod sets it to <home>/contexts/<context>/providers/<name> for machine verbs.
    env.PROVIDER_FOLDER && dirname(dirname(dirname(dirname(env.PROVIDER_FOLDER)))),
    env.MACHINE_FOLDER && dirname(dirname(dirname(dirname(env.MACHINE_FOLDER)))),
    user && join(user, ".devpod"),
    user && join(user, ".devsy"),
  ].filter((h): h is string => !!h?.trim()).map((h) => resolve(h.trim()));
  return [...new Set(homes)];
}

export interface DevpodHomes {
  /** The homes found (they hold a contexts/ folder). */
  homes: string[];
  /** Machine ids that have a folder in any context of any of them. */
  machineIds: Set<string>;
}

/** The homes that exist and their machine folders; none found fails in one line. */
export async function findHomes(env: Env): Promise<DevpodHomes> {
  const candidates = candidateHomes(env);
  const homes: string[] = [];
  const machineIds = new Set<string>();
  for (const home of candidates) {
    const ids = await machineIdsIn(home);
    if (!ids) continue;
    homes.push(home);
    for (const id of ids) machineIds.add(id);
  }
  if (!homes.length) {
    throw new ConfigError(
      `no DevPod or Devsy home found (looked in ${
        candidates.join(", ") || "nothing: HOME is unset"
      }); set DEVPOD_HOME (or DEVSY_HOME) to the folder that holds your machines; nothing was deleted`,
    );
  }
  return { homes, machineIds };
}

/** Machine ids with a folder in any context of this home; null when it is no home. */
async function machineIdsIn(home: string): Promise<Set<string> | null> {
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
  } catch {
    return null;
  }
  return ids;
}

/**
 * Which DevPod home on which computer a machine was made from: a short hash of the host
 * name and the home's path, recorded beside its owner, so the same person's cleanup on a
 * second laptop does not take the first laptop's machines for orphans.
 */
export async function homeOrigin(home: string, hostname = safeHostname()): Promise<string> {
  const bytes = new TextEncoder().encode(`${hostname}\n${resolve(home)}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The home a machine folder lives in (<home>/contexts/<context>/machines/<id>). */
export function homeOfMachineFolder(folder: string): string {
  return dirname(dirname(dirname(dirname(resolve(folder)))));
}

function safeHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
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
