/**
 * `init`: run by DevPod when the provider is added or its options change. Validates
 * every option, then makes one call to learn the Dokploy version (which also proves
 * URL and token), and checks a remote server named by DOKPLOY_SERVER_ID exists.
 *
 * DevPod logs init's stderr as errors (a red `error` line even on success) and its
 * stdout at info, so everything init says goes to stdout; a failure still reaches
 * stderr as one line through mod.ts (docs/devpod-protocol-notes.md).
 */
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { checkDestination, resolveDestination } from "../lib/backup/destination.ts";
import { BackupApi } from "../lib/dokploy/backups.ts";
import { findServer } from "../lib/servers/directory.ts";
import { detectVersion } from "../lib/dokploy/version.ts";
import { createLogger } from "../lib/log.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const log = createLogger({ debug: ctx.log.debugEnabled, write: writeStdoutSync });
  const { config, api } = dokployFromContext({ ...ctx, log });
  const version = await detectVersion(api);
  // Who the key is, kept beside the provider's files: creates then need no call for it.
  const me = await api.identity({ fresh: true });
  // A name or id must be a server a machine can live on (the error lists them).
  if (config.server.kind === "named") findServer(await api.servers(), config.server.ref);
  // Backups: the destination exists and Dokploy reaches its bucket (one line naming the option).
  if (config.backup) {
    const backups = new BackupApi(api.client);
    const dest = await resolveDestination(backups, config.backup.destination);
    await checkDestination(backups, dest, null);
    log.info(
      `backups go to ${dest.name} (${config.backup.schedule}, keeping ${config.backup.keep})`,
    );
  }
  log.info(`connected to Dokploy ${version} at ${config.serverUrl} as ${me.email} (${me.role})`);
  return 0;
}

const encoder = new TextEncoder();

function writeStdoutSync(text: string): void {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}
