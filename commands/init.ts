/**
 * `init`: run by DevPod when the provider is added or its options change. Validates
 * every option, then makes one call to learn the Dokploy version (which also proves
 * URL and token), and checks a configured remote server exists.
 */
import type { CommandContext } from "../lib/context.ts";
import { dokployFromContext } from "../lib/dokploy_context.ts";
import { ProviderError } from "../lib/errors.ts";
import { detectVersion } from "../lib/dokploy/version.ts";

export async function run(ctx: CommandContext): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  const version = await detectVersion(api);
  if (config.serverId && !(await api.server(config.serverId))) {
    throw new ProviderError(
      `DOKPLOY_SERVER_ID "${config.serverId}" is not a server of this Dokploy; leave it empty to use the Dokploy host`,
    );
  }
  ctx.log.info(`connected to Dokploy ${version} at ${config.serverUrl}`);
  return 0;
}
