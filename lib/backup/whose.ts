/**
 * Whose backups a caller may list and restore (issue 25). A live machine's are its owner's.
 * A deleted machine has no owner left in Dokploy: its backups are the caller's when a DevPod
 * home on this computer recorded deleting it (folder_record.ts). An owner/admin may see every
 * backup (`list --backups --all`) and restore any by naming its key (`--from`).
 */
import { type Identity, isPrivileged } from "../identity/identity.ts";
import type { Relation } from "../identity/ownership.ts";
import type { KnownFolder } from "./bucket.ts";

/** A backup's machine as the project shows it now: live (with whose it is) or deleted. */
export type Standing = { relation: Relation } | null;

export const BY_KEY =
  "a Dokploy owner/admin may restore another's backup by naming its key with --from";

/** Whether a backup file (its key) is shown to the caller. */
export function backupShown(
  key: string,
  live: Standing,
  known: readonly KnownFolder[],
  me: Identity,
  all: boolean,
): boolean {
  if (all && isPrivileged(me)) return true;
  if (live) return live.relation === "mine";
  return known.some((k) => k.recordedHere && key.startsWith(k.folder));
}

/** Why restoring from machine `source` is refused, or null when it may go on. */
export function restoreRefusal(
  source: string,
  live: Standing,
  known: readonly KnownFolder[],
  me: Identity,
  namedKey: boolean,
): string | null {
  if (namedKey && isPrivileged(me)) return null;
  if (live) return null; // checked against its marker by the caller (assertMine)
  if (known.some((k) => k.recordedHere && k.machineId === source)) return null;
  return `machine ${source} is not in Dokploy, and no DevPod home on this computer deleted it; its owner restores it from the computer that deleted it (list --backups shows yours), or ${BY_KEY}`;
}
