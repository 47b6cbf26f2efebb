/** What every machine verb works with. */
import type { MachineContext, ProviderConfig } from "../config.ts";
import type { DokployApi } from "../dokploy/api.ts";
import type { Logger } from "../log.ts";

export interface MachineDeps {
  api: DokployApi;
  config: ProviderConfig;
  machine: MachineContext;
  log: Logger;
  signal: AbortSignal;
  providerVersion: string;
}
