/** `version`: the provider version on stdout. */
import type { CommandContext } from "../lib/context/command.ts";
import { PROVIDER_VERSION } from "../lib/version.ts";

export async function run(ctx: CommandContext): Promise<number> {
  await ctx.stdout(`devpod-provider-dokploy ${PROVIDER_VERSION}\n`);
  return 0;
}
