/** BACKUP_DESTINATION: a Dokploy S3 destination, by name or id, and whether Dokploy reaches it. */
import type { BackupApi, Destination } from "../dokploy/backups.ts";
import { ConfigError, ProviderError } from "../errors.ts";

const WHERE = "Dokploy > Settings > S3 Destinations";

/** The destination BACKUP_DESTINATION names: by id first, then by a unique name. */
export async function resolveDestination(api: BackupApi, ref: string): Promise<Destination> {
  const all = await api.destinations();
  const byId = all.find((d) => d.destinationId === ref);
  if (byId) return byId;
  const named = all.filter((d) => d.name.toLowerCase() === ref.toLowerCase());
  if (named.length === 1) return named[0];
  const known = all.map((d) => `${d.name} (${d.destinationId})`).join(", ");
  if (named.length > 1) {
    throw new ConfigError(
      `BACKUP_DESTINATION "${ref}" names ${named.length} destinations; set it to one id: ${known}`,
    );
  }
  throw new ConfigError(
    all.length === 0
      ? `BACKUP_DESTINATION "${ref}": Dokploy has no S3 destination yet; add one in ${WHERE}, or leave BACKUP_DESTINATION empty`
      : `BACKUP_DESTINATION "${ref}" is not a Dokploy destination; destinations: ${known}`,
  );
}

/**
 * Dokploy lists the bucket with the destination's own keys (destination.testConnection),
 * from where backups of `serverId`'s machines run. One line naming the option when not.
 */
export async function checkDestination(
  api: BackupApi,
  dest: Destination,
  serverId: string | null,
): Promise<void> {
  const full = await api.destination(dest.destinationId);
  if (!full) throw new ConfigError(`BACKUP_DESTINATION ${dest.name} was removed from Dokploy`);
  try {
    await api.testDestination(full, serverId);
  } catch (err) {
    throw new ProviderError(
      `BACKUP_DESTINATION ${dest.name}: Dokploy cannot reach its bucket ${dest.bucket ?? ""} at ${
        dest.endpoint ?? "?"
      } (${firstLine((err as Error).message)}); check its endpoint, bucket and keys in ${WHERE}`,
    );
  }
}

function firstLine(s: string): string {
  return s.split("\n")[0].slice(0, 200);
}
