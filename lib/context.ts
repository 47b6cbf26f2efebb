/**
 * What every command receives: the environment DevPod gave us, a stderr logger, a
 * stdout writer (only `status` and `command` and the human verbs use it), and an
 * abort signal raised by Ctrl-C/SIGTERM.
 */
import { type Env, isDebug, loadConfig, loadMachineContext } from "./config.ts";
import { DokployApi } from "./dokploy/api.ts";
import { DokployClient } from "./dokploy/client.ts";
import { createLogger, type Logger } from "./log.ts";
import type { MachineDeps } from "./machine/deps.ts";
import { PROVIDER_VERSION } from "./version.ts";

export interface CommandContext {
  env: Env;
  log: Logger;
  stdout: (text: string) => Promise<void>;
  signal: AbortSignal;
}

const encoder = new TextEncoder();

export function defaultContext(signal: AbortSignal): CommandContext {
  const env = Deno.env.toObject();
  return {
    env,
    log: createLogger({ debug: isDebug(env) }),
    stdout: async (text) => {
      const bytes = encoder.encode(text);
      for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
    },
    signal,
  };
}

/** Config + client for commands that talk to Dokploy. */
export function dokployFromContext(ctx: CommandContext) {
  const config = loadConfig(ctx.env);
  const client = new DokployClient({
    baseUrl: config.serverUrl,
    token: config.token,
    log: ctx.log,
  });
  return { config, api: new DokployApi(client) };
}

/** Everything a machine verb needs: options, MACHINE_ID/FOLDER, the API. */
export function machineDeps(ctx: CommandContext): MachineDeps {
  const { config, api } = dokployFromContext(ctx);
  return {
    api,
    config,
    machine: loadMachineContext(ctx.env),
    log: ctx.log,
    signal: ctx.signal,
    providerVersion: PROVIDER_VERSION,
  };
}

/** Runs a lifecycle verb under the machine's lock (one provider process per machine). */
export async function runMachineVerb(
  ctx: CommandContext,
  verb: (deps: MachineDeps) => Promise<void>,
): Promise<number> {
  const deps = machineDeps(ctx);
  const { withMachineLock } = await import("./machine/lock.ts");
  await withMachineLock(deps.machine.machineFolder, deps.config.readyTimeoutMs, () => verb(deps));
  return 0;
}
