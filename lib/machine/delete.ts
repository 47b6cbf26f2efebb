/** `delete` (design §5): the service (and its volumes unless KEEP_VOLUMES), then local files. Idempotent. */
import { join } from "node:path";
import { removeIfExists } from "../fs.ts";
import { CLIENT_KEY, HOST_KEY, KNOWN_HOSTS } from "../ssh/keys.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine } from "./locate.ts";
import { STATE_FILE } from "./state.ts";

const LOCAL_FILES = [
  STATE_FILE,
  KNOWN_HOSTS,
  CLIENT_KEY,
  `${CLIENT_KEY}.pub`,
  HOST_KEY,
  `${HOST_KEY}.pub`,
];

export async function deleteMachine(d: MachineDeps): Promise<void> {
  const found = await locateMachine(d);
  if (found.compose) {
    const keep = d.config.keepVolumes;
    d.log.info(
      `deleting machine ${d.machine.machineId}${keep ? " (KEEP_VOLUMES: volumes are kept)" : ""}`,
    );
    await d.api.deleteCompose(found.compose.composeId, !keep);
  } else {
    d.log.info(`machine ${d.machine.machineId} is already gone from Dokploy`);
  }
  for (const f of LOCAL_FILES) await removeIfExists(join(d.machine.machineFolder, f));
}
