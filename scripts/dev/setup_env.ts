/**
 * `deno task setup-env`: writes `.env.example` (every option of the model, commented,
 * with its default) and copies it to `.env` when there is none yet. Never a real token.
 *
 *   deno run -A scripts/dev/setup_env.ts [--dir DIR]
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.ts";
import { renderEnvExample } from "./options_env.ts";

/** Writes the files into `dir`; returns the paths it wrote. */
export async function setupEnv(dir: string): Promise<string[]> {
  const text = renderEnvExample();
  const example = join(dir, ".env.example");
  await Deno.writeTextFile(example, text);
  const written = [example];
  try {
    // createNew: an existing .env holds the user's settings and is never overwritten.
    await Deno.writeTextFile(join(dir, ".env"), text, { createNew: true, mode: 0o600 });
    written.push(join(dir, ".env"));
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  return written;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { dir: { type: "string", default: REPO_ROOT } } });
  const written = await setupEnv(values.dir);
  for (const path of written) console.log(`wrote ${path}`);
  if (written.length === 1) console.log(".env already exists: left as is");
  console.log(
    "next: fill DOKPLOY_SERVER_URL and DOKPLOY_API_TOKEN in .env, then `deno task configure`",
  );
}
