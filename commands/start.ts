/** `start`: brings a stopped machine up (redeploys when its spec changed) and waits for SSH. Logs on stderr only. */
import type { CommandContext } from "../lib/context/command.ts";
import { runMachineVerb } from "../lib/context/dokploy.ts";
import { clearingRefusal } from "../lib/ssh/host_key_refusal.ts";
import { startMachine } from "../lib/machine/start.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, clearingRefusal(startMachine));
}
