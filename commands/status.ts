/**
 * `status`: prints exactly one of Running/Busy/Stopped/NotFound on stdout. Errors
 * (transport, auth, failed deploy, a host-key refusal `command` ran into) exit
 * non-zero with a message: never `NotFound`, which would make DevPod create a second
 * machine. Silent on stderr when it succeeds (the fork logs status's stderr on every
 * poll); what it would have said is written before the error line when it fails.
 */
import type { CommandContext } from "../lib/context/command.ts";
import { machineDeps } from "../lib/context/dokploy.ts";
import { holdBack } from "../lib/log.ts";
import { answerStatus } from "../lib/machine/query.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const held = holdBack(ctx.log);
  try {
    const status = await answerStatus(machineDeps({ ...ctx, log: held.logger }));
    await ctx.stdout(`${status}\n`);
    return 0;
  } catch (err) {
    held.flush();
    throw err;
  }
}
