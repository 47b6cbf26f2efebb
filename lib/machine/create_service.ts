/**
 * compose.create is the one call we never repeat blindly: Dokploy may have made the
 * service before the connection died (or before a proxy answered 5xx). After such a
 * failure we re-read the project for our marker and adopt what is there; only when
 * nothing is there do we create again, once.
 */
import type { Compose, CreateComposeInput } from "../dokploy/api.ts";
import { DokployError } from "../errors.ts";
import type { MachineDeps } from "./deps.ts";
import { machineIn, type ProjectSnapshot, refreshProjectSnapshot } from "./project.ts";

/** Creates the machine's service, or adopts the one a failed create left behind. */
export async function createComposeOnce(
  d: MachineDeps,
  input: CreateComposeInput,
  snapshot: ProjectSnapshot,
): Promise<Compose> {
  try {
    return await d.api.createCompose(input);
  } catch (err) {
    if (!mayHaveCreated(err)) throw err;
    // Reads are retried through an outage, so this waits for Dokploy to come back.
    const after = await refreshProjectSnapshot(d.api, snapshot);
    const listed = machineIn(after, d.machine.machineId);
    const made = listed && await d.api.composeOne(listed.composeId);
    if (made) {
      d.log.info(`compose.create failed but Dokploy made the service; adopting it`);
      return made;
    }
    d.log.info("compose.create failed and Dokploy has no such service; creating it again");
    return await d.api.createCompose(input);
  }
}

/** A lost answer or a server error: the create may have happened. A 4xx never does. */
function mayHaveCreated(err: unknown): boolean {
  return err instanceof DokployError && (err.transport || (err.status ?? 0) >= 500);
}
