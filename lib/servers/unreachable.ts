/**
 * A remote server Dokploy cannot reach over SSH. Dokploy then answers `[]` for the
 * server's containers (as for any Docker error) and 500 "SSH connection error" for
 * compose start/stop: neither is evidence that a machine stopped or is gone.
 */
import type { DokployApi } from "../dokploy/api.ts";
import { ProviderError } from "../errors.ts";

/** Dokploy's execAsyncRemote failures: "SSH connection error: …", "Authentication failed: …". */
const SSH_FAILURE =
  /SSH connection error[^|]*|Authentication failed[^|]*|Timed out while waiting for handshake/i;

/** The SSH failure Dokploy reported, or null when `err` is something else. */
export function unreachableReason(err: unknown): string | null {
  const m = SSH_FAILURE.exec(err instanceof Error ? err.message : String(err));
  return m ? m[0].trim().replace(/[).;,]+$/, "") : null;
}

/** The machine's server cannot be reached by Dokploy: what it runs is unknown. */
export class ServerUnreachableError extends ProviderError {}

export function serverUnreachable(
  name: string,
  reason: string,
  what: string,
): ServerUnreachableError {
  return new ServerUnreachableError(
    `Dokploy cannot reach server ${name} (${reason}); ${what}; check the server and its SSH access from Dokploy (Remote Servers), then run the command again`,
  );
}

/**
 * Refuses, with one line naming the server, when Dokploy cannot reach the remote server
 * `serverId` (one server.validate; the Dokploy host is always reached).
 */
export async function requireReachable(
  api: DokployApi,
  serverId: string | null,
  what: string,
): Promise<void> {
  if (serverId === null) return;
  const reason = await whyUnreachable(api, serverId);
  if (reason) throw serverUnreachable(await nameOf(api, serverId), reason, what);
}

/**
 * Why Dokploy cannot reach the remote server (one `server.validate`, which runs its checks
 * there over SSH); null when it can, or when the check failed for another reason.
 */
export async function whyUnreachable(api: DokployApi, serverId: string): Promise<string | null> {
  return await api.validateServer(serverId).then(() => null, unreachableReason);
}

/** Turns Dokploy's SSH failure on `serverId` into the one-line error; other errors pass. */
export async function orUnreachable<T>(
  api: DokployApi,
  serverId: string | null,
  what: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const reason = serverId === null ? null : unreachableReason(err);
    if (reason) throw serverUnreachable(await nameOf(api, serverId!), reason, what);
    throw err;
  }
}

export async function nameOf(api: DokployApi, serverId: string): Promise<string> {
  const s = await api.server(serverId).catch(() => null);
  return s ? `${s.name} (${s.ipAddress})` : serverId;
}
