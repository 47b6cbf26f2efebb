/** `delete`: DevPod's machine delete (design §5). Logs on stderr, nothing on stdout. */
import type { CommandContext } from "../lib/context.ts";
import { machineDeps } from "../lib/context.ts";
import { deleteMachine } from "../lib/machine/lifecycle.ts";
import { withMachineLock } from "../lib/machine/lock.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const deps = machineDeps(ctx);
  await withMachineLock(
    deps.machine.machineFolder,
    deps.config.readyTimeoutMs,
    () => deleteMachine(deps),
  );
  return 0;
}
