/** `create`: DevPod's machine create — returns once SSH with the pinned key works. Logs on stderr only. */
import type { CommandContext } from "../lib/context/command.ts";
import { runMachineVerb } from "../lib/context/dokploy.ts";
import { clearingRefusal } from "../lib/ssh/host_key_refusal.ts";
import { createMachine } from "../lib/machine/create.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, clearingRefusal(createMachine));
}
