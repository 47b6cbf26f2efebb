/** `stop`: stops the machine; its volumes are kept. Logs on stderr only. */
import type { CommandContext } from "../lib/context/command.ts";
import { runMachineVerb } from "../lib/context/dokploy.ts";
import { stopMachine } from "../lib/machine/stop.ts";

export function run(ctx: CommandContext): Promise<number> {
  return runMachineVerb(ctx, stopMachine);
}
