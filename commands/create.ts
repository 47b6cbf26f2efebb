/** `create`: DevPod's machine create — returns once SSH with the pinned key works. Logs on stderr only. */
import { type CommandContext, runMachineVerb } from "../lib/context.ts";
import { createMachine } from "../lib/machine/lifecycle.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, createMachine);
}
