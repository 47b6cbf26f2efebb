/**
 * `status`: prints exactly one of Running/Busy/Stopped/NotFound on stdout. Errors
 * (transport, auth, failed deploy, a host-key refusal `command` ran into) exit
 * non-zero with a message: never `NotFound`, which would make DevPod create a second
 * machine.
 */
import type { CommandContext } from "../lib/context/command.ts";
import { machineDeps } from "../lib/context/dokploy.ts";
import { assertNoHostKeyRefusal } from "../lib/ssh/host_key_refusal.ts";
import { machineStatus } from "../lib/machine/query.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const deps = machineDeps(ctx);
  await assertNoHostKeyRefusal(deps.machine);
  const status = await machineStatus(deps);
  await ctx.stdout(`${status}\n`);
  return 0;
}
