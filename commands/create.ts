/** `create`: DevPod's machine create — returns once SSH with the pinned key works. Logs on stderr only. */
import type { CommandContext } from "../lib/context.ts";
import { runMachineVerb } from "../lib/dokploy_context.ts";
import { clearingRefusal } from "../lib/host_key_refusal.ts";
import { createMachine } from "../lib/machine/create.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, clearingRefusal(createMachine));
}
