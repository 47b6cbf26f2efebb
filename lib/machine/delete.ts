/** `delete` (design §5): the service (and its volumes unless KEEP_VOLUMES), then local files. Idempotent. */
import { join } from "node:path";
import { removeIfExists } from "../fs.ts";
import { requireReachable } from "../servers/unreachable.ts";
import { CLIENT_KEY, HOST_KEY, KNOWN_HOSTS } from "../ssh/keys.ts";
import type { MachineDeps } from "./deps.ts";
import { findByMarker } from "./locate.ts";
import { readState, STATE_FILE } from "./state.ts";

const LOCAL_FILES = [
  STATE_FILE,
  KNOWN_HOSTS,
  CLIENT_KEY,
  `${CLIENT_KEY}.pub`,
  HOST_KEY,
  `${HOST_KEY}.pub`,
];

export async function deleteMachine(d: MachineDeps): Promise<void> {
  const folder = d.machine.machineFolder;
  // state.json names the service: delete it straight away, a 404 says it was gone.
  const state = await readState(folder);
  const listed = state ? null : await findByMarker(d);
  const composeId = state?.composeId ?? listed?.composeId;
  const keep = d.config.keepVolumes;
  if (!composeId) {
    d.log.info(`machine ${d.machine.machineId} is already gone from Dokploy`);
  } else {
    // Dokploy deletes the service even when it cannot reach the server, leaving the
    // container running there for nobody to find: refuse instead.
    await requireReachable(
      d.api,
      state?.serverId ?? listed?.serverId ?? null,
      "the machine was not deleted (its container would be left running there)",
    );
    d.log.info(
      `deleting machine ${d.machine.machineId}${keep ? " (KEEP_VOLUMES: volumes are kept)" : ""}`,
    );
    const deleted = await d.api.deleteCompose(composeId, !keep);
    if (!deleted) d.log.info("it was already gone from Dokploy");
  }
  for (const f of LOCAL_FILES) await removeIfExists(join(folder, f));
}
