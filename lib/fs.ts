/** Small file helpers: atomic writes with a mode, tolerant removal. */
import { dirname } from "node:path";

/** Writes via a temp file + rename, so readers never see half a file. */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, data, { mode });
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, path);
}

/** Removes a file or tree; absent is fine. */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}
