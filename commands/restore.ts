/**
 * `restore <machine> [--from <key>|--latest] [--into <machine>]`: a backup of <machine>
 * (which may be deleted) put back into its own home, or into another machine's.
 */
import { formatBytes } from "../lib/backup/bucket.ts";
import {
  backedMachine,
  backupContext,
  knownFolders,
  requireMachine,
} from "../lib/backup/locate.ts";
import { restoreHome } from "../lib/backup/restore.ts";
import { BY_KEY, restoreRefusal } from "../lib/backup/whose.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { isPrivileged } from "../lib/identity/identity.ts";
import { assertMine } from "../lib/identity/ownership.ts";
import { ConfigError, ProviderError } from "../lib/errors.ts";
import { resolveSshHost } from "../lib/machine/locate.ts";

interface Options {
  args?: string[];
  from?: string;
  latest?: boolean;
  into?: string;
  force?: boolean;
}

export async function run(ctx: CommandContext, opts: Options): Promise<number> {
  const source = opts.args?.[0];
  if (!source) throw new ConfigError("restore needs a machine: restore <machine> --latest");
  if (opts.from && opts.latest) {
    throw new ConfigError("restore takes --from <key> or --latest, not both");
  }
  const { config, api } = dokployFromContext(ctx);
  const { backups, destination, snapshot } = await backupContext(config, api);
  const me = await api.identity({ fresh: opts.from !== undefined });
  const target = requireMachine(snapshot, opts.into ?? source, me, "restore");
  const sourceMachine = backedMachine(snapshot, source, me);
  const known = await knownFolders(snapshot, config, ctx.env);
  // Another owner's backups are read only by an owner/admin naming the exact key.
  const namedKey = opts.from !== undefined;
  if (sourceMachine && sourceMachine.relation !== "mine" && !(namedKey && isPrivileged(me))) {
    assertMine(sourceMachine.marked, me, "restore", { fix: BY_KEY });
  }
  const refusal = restoreRefusal(source, sourceMachine, known, me, namedKey);
  if (refusal) throw new ProviderError(refusal);
  const out = await restoreHome(
    backups,
    api,
    {
      source,
      from: opts.from,
      latest: opts.latest,
      target,
      sourceMachine,
      known,
      destinationId: destination.destinationId,
      force: opts.force,
      ssh: {
        host: await resolveSshHost(api, config, target.serverId),
        port: target.sshPort,
        timeoutMs: config.readyTimeoutMs,
      },
    },
    ctx.log,
    ctx.signal,
  );
  await ctx.stdout(
    `restored ${out.file.key} (${
      formatBytes(out.file.sizeBytes)
    }, taken ${out.file.takenAt}) into machine ${target.machineId} in ${
      (out.durationMs / 1000).toFixed(1)
    } s${out.safety ? `; its previous home is backed up as ${out.safety.key}` : ""}\n`,
  );
  return 0;
}
