/** The Dokploy side of a command: validated options, the API, and machine deps. */
import { loadConfig, loadMachineContext } from "../config.ts";
import type { CommandContext } from "./command.ts";
import { DokployApi } from "../dokploy/api.ts";
import { DokployClient } from "../dokploy/client.ts";
import { identityDir, identityStore } from "../identity/identity.ts";
import type { MachineDeps } from "../machine/deps.ts";
import { withMachineLock } from "../machine/lock.ts";
import { PROVIDER_VERSION } from "../version.ts";

/** Config + client for commands that talk to Dokploy. */
export function dokployFromContext(ctx: CommandContext) {
  const config = loadConfig(ctx.env);
  const client = new DokployClient({
    baseUrl: config.serverUrl,
    token: config.token,
    retryWindowMs: config.retryWindowMs,
    log: ctx.log,
  });
  const identity = identityStore(identityDir(ctx.env), config.serverUrl, config.token);
  return { config, api: new DokployApi(client, identity) };
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
  await withMachineLock(deps.machine.machineFolder, deps.config.readyTimeoutMs, () => verb(deps));
  return 0;
}
