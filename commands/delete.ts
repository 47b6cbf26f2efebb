/** `delete`: removes the machine (and its volumes unless KEEP_VOLUMES); idempotent. Logs on stderr only. */
import { type CommandContext, runMachineVerb } from "../lib/context.ts";
import { deleteMachine } from "../lib/machine/lifecycle.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, deleteMachine);
}
