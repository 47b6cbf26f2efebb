/**
 * A per-machine lock file, so two provider processes never run lifecycle verbs on one
 * machine at once (DevPod can: `up` from two terminals). Stale locks of dead
 * processes are taken over.
 */
import { join } from "node:path";
import { ProviderError } from "../errors.ts";
import { sleep } from "../ssh/ready.ts";

const LOCK_FILE = ".lock";

function processAlive(pid: number): boolean {
  if (Deno.build.os !== "linux") return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

export async function withMachineLock<T>(
  folder: string,
  timeoutMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  await Deno.mkdir(folder, { recursive: true });
  const path = join(folder, LOCK_FILE);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await Deno.writeTextFile(path, `${Deno.pid}\n`, { createNew: true, mode: 0o600 });
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      const holder = Number((await Deno.readTextFile(path).catch(() => "")).trim());
      const age = Date.now() - ((await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? 0);
      // A dead holder, or (where liveness cannot be checked) one older than any verb.
      if (!holder || !processAlive(holder) || age > timeoutMs + 60_000) {
        await Deno.remove(path).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) {
        throw new ProviderError(
          `another provider process (pid ${holder}) is working on this machine; wait for it or remove ${path} if it is gone`,
        );
      }
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}
