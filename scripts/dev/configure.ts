/**
 * `deno task configure`: sends the options set in `.env` to DevPod in ONE
 * `devpod provider set-options <provider> -o K=V …` call (which also re-runs `init`).
 * Unknown keys are warned about and skipped; the token is never printed.
 *
 *   deno run -A scripts/dev/configure.ts [--provider dokploy-dev] [--env-file .env]
 */
import { parseArgs } from "node:util";
import { optionByName } from "../../lib/options.ts";
import { DEFAULT_ENV_FILE, DEV_PROVIDER_NAME } from "./paths.ts";
import { displayValue, optionValueProblem, pickKnownOptions, readEnvFile } from "./options_env.ts";
import { devpodInteractive, findExecutable } from "./devpod_cli.ts";

export interface ConfigurePlan {
  args: string[];
  /** The same call with secrets masked, for printing. */
  display: string[];
  warnings: string[];
  errors: string[];
}

/** The set-options call for these dotenv entries. */
export function planSetOptions(provider: string, env: Record<string, string>): ConfigurePlan {
  const { known, unknown } = pickKnownOptions(env);
  const plan: ConfigurePlan = {
    args: ["provider", "set-options", provider],
    display: ["provider", "set-options", provider],
    warnings: unknown.map((k) => `ignoring ${k}: not an option of this provider`),
    errors: [],
  };
  for (const [name, value] of known) {
    const spec = optionByName(name);
    // An empty required option would only make DevPod prompt or fail; leave it alone.
    if (value === "" && spec.required) {
      plan.warnings.push(`skipping ${name}: empty in .env (it is required)`);
      continue;
    }
    const problem = optionValueProblem(spec, value);
    if (problem) plan.errors.push(problem);
    plan.args.push("-o", `${name}=${value}`);
    plan.display.push("-o", `${name}=${displayValue(spec, value)}`);
  }
  return plan;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      provider: { type: "string", default: DEV_PROVIDER_NAME },
      "env-file": { type: "string", default: DEFAULT_ENV_FILE },
    },
  });
  const env = await readEnvFile(values["env-file"]);
  if (!env) {
    console.error(`${values["env-file"]} not found: run \`deno task setup-env\` and fill it in`);
    return 1;
  }
  const plan = planSetOptions(values.provider, env);
  for (const w of plan.warnings) console.error(`warning: ${w}`);
  if (plan.errors.length > 0) {
    for (const e of plan.errors) console.error(`error: ${e}`);
    return 1;
  }
  if (plan.args.length === 3) {
    console.error(`no options set in ${values["env-file"]}: nothing to configure`);
    return 1;
  }
  const devpod = await findExecutable("devpod");
  if (!devpod) {
    console.error("devpod is not on PATH; the call would be:");
    console.error(`  devpod ${plan.display.join(" ")}`);
    return 1;
  }
  console.log(`$ devpod ${plan.display.join(" ")}`);
  return await devpodInteractive(devpod, plan.args);
}

if (import.meta.main) Deno.exit(await main());
