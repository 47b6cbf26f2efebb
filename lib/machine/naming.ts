/**
 * How a DevPod machine is named and found in Dokploy. The description carries a
 * marker with the machine id and its SSH port, so one `project.one` call finds every
 * machine and every port this provider has published — never a global name search.
 */

/** Dokploy adds "-xxxxxx"; ≤48 keeps the result within Docker's 63-char limit. */
export function appNamePrefix(machineId: string): string {
  const safe = machineId.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return `devpod-${safe}`.slice(0, 48).replace(/-+$/, "");
}

export function composeName(machineId: string): string {
  return `devpod-${machineId}`;
}

export interface MachineMarker {
  machineId: string;
  sshPort: number;
  /** The size it asked for: what placement counts per server (absent on older machines). */
  cpus?: number;
  memoryMiB?: number;
  /** The Dokploy user id of its owner (lib/identity); absent on machines made before owners. */
  ownerId?: string;
  /** The DevPod home it was made from (lib/devpod_home.ts homeOrigin), with its owner. */
  origin?: string;
}

const MARKER =
  /\[devpod-machine-id=([A-Za-z0-9._-]+);port=(\d+)(?:;cpus=(\d+(?:\.\d+)?);mem=(\d+))?(?:;owner=([A-Za-z0-9._-]+)(?:;from=([0-9a-f]{8}))?)?\]/;

/**
 * The description: readable text, then the marker. `owner` is the owner's email (shown by
 * `list`); what counts is the user id in the marker, which Dokploy vouched for at create.
 */
export function describeMachine(
  marker: MachineMarker,
  meta: { providerVersion: string; owner: string },
): string {
  const size = marker.cpus !== undefined && marker.memoryMiB !== undefined
    ? `;cpus=${marker.cpus};mem=${marker.memoryMiB}`
    : "";
  const from = marker.origin ? `;from=${marker.origin}` : "";
  const owner = marker.ownerId ? `;owner=${marker.ownerId}${from}` : "";
  const text = meta.owner.replace(/[\[\]();\s]/g, "");
  return `DevPod machine ${marker.machineId} (devpod-provider-dokploy ${meta.providerVersion}, owner ${text}) [devpod-machine-id=${marker.machineId};port=${marker.sshPort}${size}${owner}]`;
}

/** The owner text of a description (an email, or `user@host` on older machines). */
export function ownerText(description: string | null | undefined): string | null {
  return /owner ([^)\s]+)/.exec(description ?? "")?.[1] ?? null;
}

export function parseMarker(description: string | null | undefined): MachineMarker | null {
  const m = description ? MARKER.exec(description) : null;
  if (!m) return null;
  return {
    machineId: m[1],
    sshPort: Number(m[2]),
    ...(m[3] !== undefined ? { cpus: Number(m[3]), memoryMiB: Number(m[4]) } : {}),
    ...(m[5] !== undefined ? { ownerId: m[5] } : {}),
    ...(m[6] !== undefined ? { origin: m[6] } : {}),
  };
}
