/**
 * What the fault-injection suites share: counting what a scenario left behind in
 * Dokploy, and running a verb as a child process a test can kill mid-way.
 */
import { readState } from "../../lib/machine/state.ts";
import { MOD, type World } from "./harness.ts";

/** Services/volumes in the emulator that no machine folder's state.json refers to. */
export async function orphans(w: World, ids: string[]): Promise<number> {
  const known = new Set<string>();
  for (const id of ids) {
    const s = await readState(w.folder(id)).catch(() => null);
    if (s) known.add(s.composeId);
  }
  const snap = await w.emu.snapshot();
  const services = snap.composes.filter((c) => !known.has(c.composeId));
  const liveVolumes = new Set(snap.composes.flatMap((c) => c.volumes));
  const strayVolumes = snap.volumeDirs.filter((d) => ![...liveVolumes].some((v) => d.endsWith(v)));
  return services.length + strayVolumes.length;
}

/**
 * `deno run mod.ts <verb>` with DevPod's env, as a child the caller must await; `stdin`
 * "piped" to talk to it (a `command` tunnel, with COMMAND in `env`).
 */
export async function spawnVerb(
  w: World,
  verb: string,
  id: string,
  { env = {}, stdin = "null" }: { env?: Record<string, string>; stdin?: "null" | "piped" } = {},
): Promise<Deno.ChildProcess> {
  await Deno.mkdir(w.folder(id), { recursive: true });
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MOD, verb],
    env: w.env(id, env),
    clearEnv: true,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
