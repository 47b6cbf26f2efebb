/**
 * The Dokploy servers a machine may live on (issue 13): found by id or name, the ones a
 * create may choose (active, deploy type), and how they are named to a user.
 */
import type { Server } from "../dokploy/api.ts";
import { ConfigError } from "../errors.ts";

/** Whether a create may put a machine there: Dokploy marks it active and it runs services. */
export function isUsable(s: Server): boolean {
  return (s.serverStatus ?? "active") === "active" && (s.serverType ?? "deploy") === "deploy";
}

/** `id (name, status)` of each server, for messages that ask the user to pick one. */
export function listing(servers: Server[]): string {
  if (servers.length === 0) return "this Dokploy has no remote servers";
  return "servers: " +
    servers.map((s) =>
      `${s.serverId} (${s.name}, ${s.serverStatus ?? "active"}${
        (s.serverType ?? "deploy") === "build" ? ", build only" : ""
      })`
    ).join(", ");
}

/**
 * The server DOKPLOY_SERVER_ID names, by id first, then by name; a usable one only. The
 * error lists the servers that exist, so the one line is also the fix.
 */
export function findServer(servers: Server[], ref: string): Server {
  const lower = ref.toLowerCase();
  const byName = servers.filter((s) => s.name.toLowerCase() === lower);
  const found = servers.find((s) => s.serverId === ref) ??
    (byName.length === 1 ? byName[0] : undefined);
  const hint = "set DOKPLOY_SERVER_ID to one of them, local or auto";
  if (!found) {
    const why = byName.length > 1
      ? `names ${byName.length} servers`
      : "is not a server of this Dokploy";
    throw new ConfigError(`DOKPLOY_SERVER_ID "${ref}" ${why}; ${listing(servers)}; ${hint}`);
  }
  if ((found.serverType ?? "deploy") === "build") {
    throw new ConfigError(
      `DOKPLOY_SERVER_ID "${ref}" is a build server (it builds images, runs no services); ${
        listing(servers)
      }; ${hint}`,
    );
  }
  if (!isUsable(found)) {
    throw new ConfigError(
      `DOKPLOY_SERVER_ID "${ref}" is inactive in Dokploy; activate it there, or ${hint}`,
    );
  }
  return found;
}

/** How a server is shown: its name, or `local` for the Dokploy host. */
export function serverName(serverId: string | null, servers: readonly Server[]): string {
  if (serverId === null) return "local";
  return servers.find((s) => s.serverId === serverId)?.name ?? serverId;
}
