/**
 * MACHINE_ID and MACHINE_FOLDER, which DevPod sets for every machine command. Kept
 * apart from the option parser so `command` starts without loading it.
 */
import { ConfigError } from "../errors.ts";

export type Env = Readonly<Record<string, string | undefined>>;

/** The per-machine variables DevPod sets for machine commands. */
export interface MachineContext {
  machineId: string;
  machineFolder: string;
  /**
   * DOKPLOY_TAKE_OVER names this machine: its owner hands it this folder's new keys
   * (lib/machine/adopt.ts). Set by hand for one run, never an option.
   */
  takeOver?: boolean;
}

/** Names the one machine whose owner takes it over from a folder without its keys. */
export const TAKE_OVER_ENV = "DOKPLOY_TAKE_OVER";

/** MACHINE_ID and MACHINE_FOLDER, which DevPod sets for every machine command. */
export function loadMachineContext(env: Env): MachineContext {
  const machineId = env.MACHINE_ID?.trim() ?? "";
  const machineFolder = env.MACHINE_FOLDER?.trim() ?? "";
  if (!machineId) {
    throw new ConfigError(
      "MACHINE_ID is not set; this command is run by DevPod (devpod machine/up), or set MACHINE_ID yourself",
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(machineId)) {
    throw new ConfigError(
      `MACHINE_ID "${machineId}" must be 1-63 letters, digits, '.', '_' or '-'; pick another machine name`,
    );
  }
  if (!machineFolder) {
    throw new ConfigError(
      "MACHINE_FOLDER is not set; DevPod sets it to the machine's folder, or set it to a writable directory",
    );
  }
  return { machineId, machineFolder, takeOver: env[TAKE_OVER_ENV]?.trim() === machineId };
}

/**
 * SSH_REUSE_CONNECTIONS, read here rather than through the option parser because
 * `command` runs for every tunnel and must start fast. Same values as lib/config.ts.
 */
export function reuseConnections(env: Env): boolean {
  const v = (env.SSH_REUSE_CONNECTIONS ?? "true").trim().toLowerCase();
  return !["false", "0", "no"].includes(v);
}
