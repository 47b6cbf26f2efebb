/**
 * The machine's local state in MACHINE_FOLDER/state.json (0600, atomic writes).
 * It caches what Dokploy knows plus the pinned SSH identity; if it is lost the
 * machine is found again through its marker (see naming.ts).
 */
import { join } from "node:path";
import { z } from "zod";
import { StateError } from "../errors.ts";
import { readTextIfExists, writeFileAtomic } from "../fs.ts";

const MachineStateSchema = z.object({
  version: z.literal(1),
  machineId: z.string(),
  composeId: z.string(),
  appName: z.string(),
  projectId: z.string(),
  environmentId: z.string(),
  serverId: z.string().nullable(),
  sshHost: z.string(),
  sshPort: z.number().int(),
  sshUser: z.string(),
  hostPublicKey: z.string(),
  hostKeyFingerprint: z.string(),
  createdAt: z.string(),
});
export type MachineState = z.infer<typeof MachineStateSchema>;

export const STATE_FILE = "state.json";

export async function readState(folder: string): Promise<MachineState | null> {
  const text = await readTextIfExists(join(folder, STATE_FILE));
  if (text === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StateError(
      `${join(folder, STATE_FILE)} is not valid JSON; delete the file and run the command again to re-adopt the machine`,
    );
  }
  const parsed = MachineStateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new StateError(
      `${join(folder, STATE_FILE)} has an unknown format; delete the file and run the command again to re-adopt the machine`,
    );
  }
  return parsed.data;
}

export async function writeState(folder: string, state: MachineState): Promise<void> {
  await writeFileAtomic(join(folder, STATE_FILE), JSON.stringify(state, null, 2) + "\n", 0o600);
}
