/** `backup <machine>`: one backup now through Dokploy, waited for; prints where it went. */
import { formatBytes } from "../lib/backup/bucket.ts";
import { backupContext, requireMachine } from "../lib/backup/locate.ts";
import { backupNow } from "../lib/backup/run.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { ConfigError } from "../lib/errors.ts";

export async function run(ctx: CommandContext, opts: { args?: string[] }): Promise<number> {
  const machineId = opts.args?.[0];
  if (!machineId) throw new ConfigError("backup needs a machine: backup <machine>");
  const { config, api } = dokployFromContext(ctx);
  const { backups, snapshot } = await backupContext(config, api);
  const machine = requireMachine(snapshot, machineId, await api.identity(), "backup");
  const out = await backupNow(backups, api, machine, ctx.log, ctx.signal);
  const secs = (out.durationMs / 1000).toFixed(1);
  await ctx.stdout(
    out.file
      ? `backed up machine ${machineId} in ${secs} s: ${
        formatBytes(out.file.sizeBytes)
      }, ${out.file.key}\n`
      : `backed up machine ${machineId} in ${secs} s (the bucket did not list the file yet)\n`,
  );
  return 0;
}
