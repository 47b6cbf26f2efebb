/**
 * `deno task debug-env` (the seed's `make debug-env`): tool versions, platform, the
 * paths the tooling uses and the effective options with secrets masked. Safe to paste
 * into an issue.
 */
import { DEFAULT_ENV_FILE, DEV_CACHE_DIR, DEV_PROVIDER_NAME, REPO_ROOT } from "./paths.ts";
import { effectiveOptions, formatOptionsTable, readEnvFile } from "./options_env.ts";
import { findExecutable, installedProviders, runCapture } from "./devpod_cli.ts";

/** First line of a tool's version output (stdout or stderr: `ssh -V` uses stderr). */
async function toolVersion(name: string, args: string[]): Promise<string> {
  const path = await findExecutable(name);
  if (!path) return "not found on PATH";
  const res = await runCapture(path, args).catch((e) => ({ stdout: "", stderr: String(e) }));
  const text = (res.stdout.trim() || res.stderr.trim()).split("\n")[0];
  return `${text} (${path})`;
}

const exists = (p: string) => Deno.stat(p).then(() => "exists", () => "missing");

if (import.meta.main) {
  const devpod = await findExecutable("devpod");
  const providers = devpod ? await installedProviders(devpod).catch(() => []) : [];
  const rows: [string, string][] = [
    ["deno", `${Deno.version.deno} (${Deno.execPath()})`],
    ["ssh", await toolVersion("ssh", ["-V"])],
    ["devpod", await toolVersion("devpod", ["version"])],
    ["os/arch", `${Deno.build.os}/${Deno.build.arch} (${Deno.build.target})`],
    ["repo", REPO_ROOT],
    [".env", `${DEFAULT_ENV_FILE} (${await exists(DEFAULT_ENV_FILE)})`],
    ["dev provider", `${DEV_CACHE_DIR} (${await exists(DEV_CACHE_DIR)})`],
    ["DEVPOD_HOME", Deno.env.get("DEVPOD_HOME") ?? "(unset: ~/.devpod)"],
    [
      `${DEV_PROVIDER_NAME} in devpod`,
      devpod ? String(providers.includes(DEV_PROVIDER_NAME)) : "(no devpod)",
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  const env = await readEnvFile(DEFAULT_ENV_FILE);
  console.log(`\nOptions (${env ? ".env + defaults" : "defaults, no .env"}):\n`);
  console.log(formatOptionsTable(effectiveOptions(env ?? {})));
}
