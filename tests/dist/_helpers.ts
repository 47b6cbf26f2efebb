/** Shared by the tests of the release and contributor tooling: run a script, fake devpod. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url)).replace(/[\\/]$/, "");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a repository script with `deno run -A`, like its deno task does. */
export async function runScript(
  script: string,
  args: string[] = [],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(REPO, script), ...args],
    env: opts.env,
    cwd: opts.cwd ?? REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * A `devpod` shell script in a fresh directory that appends its argv (fields separated by
 * \x1f, one call per line) to `log` and answers the two list calls with canned JSON.
 * Returns the env to put it first on PATH.
 */
export async function fakeDevpod(opts: { providers?: object; workspaces?: object[] } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "fake-devpod-" });
  const log = join(dir, "calls.log");
  await Deno.writeTextFile(join(dir, "providers.json"), JSON.stringify(opts.providers ?? {}));
  await Deno.writeTextFile(join(dir, "workspaces.json"), JSON.stringify(opts.workspaces ?? []));
  const script = `#!/bin/sh
for a in "$@"; do printf '%s\\037' "$a"; done >> '${log}'
printf '\\n' >> '${log}'
case "$1 $2" in
  "provider list") cat '${dir}/providers.json' ;;
  "list --output") cat '${dir}/workspaces.json' ;;
esac
exit 0
`;
  await Deno.writeTextFile(join(dir, "devpod"), script, { mode: 0o755 });
  return {
    dir,
    env: { PATH: `${dir}:${Deno.env.get("PATH") ?? ""}` },
    /** Every recorded call, as argv arrays. */
    calls: async (): Promise<string[][]> => {
      const text = await Deno.readTextFile(log).catch(() => "");
      return text.split("\n").filter(Boolean).map((l) => l.split("\x1f").slice(0, -1));
    },
  };
}
