/**
 * `describe`: a short human description of the machine on stdout (the maintained
 * DevPod fork runs it for `devpod machine describe` and prints what we print): id,
 * Dokploy service and project, server, SSH address, size, state as `status` decides
 * it, image cache, creation time — then the lines of `EXTRA_LINES`.
 */
import { lastBackupLine } from "../lib/backup/inventory.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { machineDeps } from "../lib/context/dokploy.ts";
import { describeMachine, type ExtraLines, formatDescription } from "../lib/machine/describe.ts";

/** Lines other features add below the built-in ones, in order. */
export const EXTRA_LINES: ExtraLines[] = [lastBackupLine];

export async function run(ctx: CommandContext): Promise<number> {
  const lines = await describeMachine(machineDeps(ctx), EXTRA_LINES);
  await ctx.stdout(formatDescription(lines));
  return 0;
}
