/**
 * A CPU limit above the server's CPU count: Docker refuses to create the container
 * ("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"). The
 * provider caps the limit at what the server has, says so once, and remembers the cap
 * in state.json so a later `start` renders the same file instead of redeploying into
 * the same refusal. Memory needs nothing alike: options allow no less than 256m (Docker's
 * floor is 6MB) and Docker accepts limits above the host's memory.
 */
import type { ProviderConfig } from "../config.ts";
import { MACHINE_TYPES } from "../options.ts";

const CPU_RANGE =
  /Range of CPUs is from [\d.]+ to (\d+(?:\.\d+)?), as there are only (\d+) CPUs? available/i;

/** The most CPUs the server accepts, read from Docker's refusal; null for any other text. */
export function serverCpusFromError(text: string): number | null {
  const m = CPU_RANGE.exec(text);
  if (!m) return null;
  const max = Number(m[1]) || Number(m[2]);
  return max > 0 ? max : null;
}

/** The CPU limit a machine runs with: the configured one, lowered to a remembered cap. */
export function effectiveCpus(configured: number, cap: number | undefined): number {
  return cap === undefined ? configured : Math.min(configured, cap);
}

export interface CpuCap {
  cpuLimit: number;
  /** One line naming the option that asked for more and how to choose. */
  warning: string;
}

/**
 * What to do when the server has only `serverCpus`: a lower cap and the warning, or
 * null when the machine already asks for no more than that (capping cannot help).
 */
export function planCpuCap(
  config: Pick<ProviderConfig, "cpus" | "machineType">,
  currentCap: number | undefined,
  serverCpus: number,
): CpuCap | null {
  if (serverCpus >= effectiveCpus(config.cpus, currentCap)) return null;
  const cap = String(serverCpus);
  // The config keeps only the resulting number: a value unlike the preset's came from MACHINE_CPUS.
  const fromPreset = config.cpus === MACHINE_TYPES[config.machineType].cpus;
  const warning = fromPreset
    ? `MACHINE_TYPE ${config.machineType} asks for ${config.cpus} CPUs but the server has ${cap}; capped at ${cap} (set MACHINE_CPUS to choose)`
    : `MACHINE_CPUS ${config.cpus} is more than the server's ${cap} CPUs; capped at ${cap} (set MACHINE_CPUS to ${cap} or less to silence this)`;
  return { cpuLimit: serverCpus, warning };
}
