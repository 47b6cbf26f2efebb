/**
 * Whose a machine is. The marker's owner id is the Dokploy user whose key created it
 * (lib/identity); nothing in this provider acts on a machine of another owner. A machine
 * made before owners were recorded has none: it is `unknown` until the holder of its keys
 * claims it (adopt.ts), and only owners/admins may remove it, by name.
 */
import { homeOfMachineFolder, homeOrigin } from "../devpod_home.ts";
import { ProviderError } from "../errors.ts";
import type { MachineOwnerRecord } from "../machine/state.ts";
import { type MachineMarker, ownerText } from "../machine/naming.ts";
import type { Identity } from "./identity.ts";

export type Relation = "mine" | "theirs" | "unknown";

/** What a refused create tells the user to do. */
export const PICK_ANOTHER =
  "pick another machine name (devpod machine create <name>, or devpod up --id <name>)";

/** A machine as its marker and description say (a project snapshot's MarkedCompose fits). */
export interface Marked {
  compose: { description?: string | null };
  marker: MachineMarker;
}

export interface MachineOwner {
  /** The owner's Dokploy user id; null on a machine made before owners were recorded. */
  userId: string | null;
  /** What `list` shows: the owner's email, or `unknown`. */
  label: string;
}

export function ownerOf(m: Marked): MachineOwner {
  const userId = m.marker.ownerId ?? null;
  return { userId, label: userId ? ownerText(m.compose.description) ?? userId : "unknown" };
}

export function relationOf(owner: Pick<MachineOwner, "userId">, me: Identity): Relation {
  if (owner.userId === null) return "unknown";
  return owner.userId === me.userId ? "mine" : "theirs";
}

/** The caller's machines in a list of marked ones. */
export function mine<T extends Marked>(
  machines: readonly T[],
  me: Identity,
): T[] {
  return machines.filter((m) => relationOf(ownerOf(m), me) === "mine");
}

/**
 * Refuses, in one line, a verb on a machine that is not the caller's. `unknown` (an older
 * machine) passes only where `allowUnknown` says the verb proves possession itself.
 */
export function assertMine(
  m: Marked,
  me: Identity,
  verb: string,
  { allowUnknown = false, fix = "yours are in list" }: { allowUnknown?: boolean; fix?: string } =
    {},
): void {
  const owner = ownerOf(m);
  const relation = relationOf(owner, me);
  if (relation === "mine" || (relation === "unknown" && allowUnknown)) return;
  const id = m.marker.machineId;
  throw new ProviderError(
    relation === "theirs"
      ? `machine ${id} belongs to ${owner.label}; ${verb} acts only on your own machines: ${fix}`
      : `machine ${id} was made before owners were recorded; ${verb} needs it claimed first: its owner runs 'devpod machine start ${id}' from the DevPod home that holds its keys`,
  );
}

export interface Found<T> {
  machine: T;
  relation: Relation;
}

/**
 * The machine with this DevPod id as the caller sees it: theirs first, then one without an
 * owner, then another owner's (which callers refuse). Several owners may use one id: an
 * admin sees all of them.
 */
export function pickMachine<T extends Marked>(
  machines: readonly T[],
  machineId: string,
  me: Identity,
): Found<T> | null {
  const named = machines.filter((m) => m.marker.machineId === machineId);
  for (const relation of ["mine", "unknown", "theirs"] as const) {
    const machine = named.find((m) => relationOf(ownerOf(m), me) === relation);
    if (machine) return { machine, relation };
  }
  return null;
}

/** The owner record a machine gets from this caller and this machine folder's home. */
export async function ownerRecord(
  me: Identity,
  machineFolder: string,
): Promise<MachineOwnerRecord> {
  return {
    userId: me.userId,
    email: me.email,
    origin: await homeOrigin(homeOfMachineFolder(machineFolder)),
  };
}
