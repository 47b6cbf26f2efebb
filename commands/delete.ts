/** `delete`: removes the machine (and its volumes unless KEEP_VOLUMES); idempotent. Logs on stderr only. */
import type { CommandContext } from "../lib/context/command.ts";
import { runMachineVerb } from "../lib/context/dokploy.ts";
import { clearingRefusal } from "../lib/ssh/host_key_refusal.ts";
import { deleteMachine } from "../lib/machine/delete.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, clearingRefusal(deleteMachine));
}
