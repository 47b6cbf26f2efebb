/** `create`: DevPod's machine create (design §5). Logs on stderr, nothing on stdout. */
import type { CommandContext } from "../lib/context.ts";
import { machineDeps } from "../lib/context.ts";
import { createMachine } from "../lib/machine/lifecycle.ts";
import { withMachineLock } from "../lib/machine/lock.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const deps = machineDeps(ctx);
  await withMachineLock(
    deps.machine.machineFolder,
    deps.config.readyTimeoutMs,
    () => createMachine(deps),
  );
  return 0;
}
