/**
 * `deno task show-config`: the options a provider configured from `.env` would get
 * (values from `.env`, else the model's defaults), secrets masked; then, when devpod is
 * installed, what DevPod has stored for the provider (DevPod masks passwords itself).
 *
 *   deno run -A scripts/dev/show_config.ts [--provider dokploy-dev] [--env-file .env]
 */
import { parseArgs } from "node:util";
import { DEFAULT_ENV_FILE, DEV_PROVIDER_NAME } from "./paths.ts";
import {
  effectiveOptions,
  formatOptionsTable,
  pickKnownOptions,
  readEnvFile,
} from "./options_env.ts";
import { findExecutable, runCapture } from "./devpod_cli.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      provider: { type: "string", default: DEV_PROVIDER_NAME },
      "env-file": { type: "string", default: DEFAULT_ENV_FILE },
    },
  });
  const env = await readEnvFile(values["env-file"]);
  console.log(`Options from ${env ? values["env-file"] : "defaults only (no .env)"}:\n`);
  for (const k of pickKnownOptions(env ?? {}).unknown) console.error(`warning: unknown key ${k}`);
  console.log(formatOptionsTable(effectiveOptions(env ?? {})));

  const devpod = await findExecutable("devpod");
  if (devpod) {
    const res = await runCapture(devpod, ["provider", "options", values.provider]);
    console.log(`\nStored in DevPod for ${values.provider}:\n`);
    console.log(res.code === 0 ? res.stdout.trimEnd() : `  (not available: ${res.stderr.trim()})`);
  }
}
