/** deployment.*, docker.* and settings.*: read-only views of the emulator. */
import type { Input, Procedures } from "../context.ts";
import { ApiError, notFound } from "../errors.ts";
import { sshFailure } from "../servers.ts";
import { findCompose } from "./compose.ts";

export const runtimeProcedures: Procedures = {
  "deployment.allByCompose": (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    return ctx.store.deploymentsOf(c.composeId);
  },

  // A deployment whose log could not even be created has logPath ""; a remote one's log
  // is read over SSH (`tail -n N <logPath>`). The server is the deployment's or its
  // service's: a volume backup's run has neither, so its log is always read on the
  // Dokploy host (where a remote backup's log is not: that read finds nothing).
  "deployment.readLogs": async (ctx, input: Input) => {
    const d = ctx.store.deployments.get(String(input.deploymentId));
    if (!d) throw notFound("Deployment");
    if (!d.logPath) return "";
    const serverId = d.serverId ?? ctx.store.composes.get(d.composeId ?? "")?.serverId ?? null;
    const failure = sshFailure(ctx.store, serverId);
    if (failure) throw new ApiError("INTERNAL_SERVER_ERROR", failure);
    const text = await Deno.readTextFile(d.logPath).catch(() => "");
    const lines = text.replace(/\n$/, "").split("\n");
    return lines.slice(-Number(input.tail ?? 100)).join("\n");
  },

  // `docker ps -a --filter label=com.docker.compose.project=<appName>`, run on the server
  // given (the Dokploy host without one): an app on another server is not found there,
  // and any failure (an unknown or unreachable server) gives [].
  "docker.getContainersByAppNameMatch": async (ctx, input: Input) => {
    const appName = String(input.appName);
    const serverId = (input.serverId as string | undefined) || null;
    if (serverId && (!ctx.store.servers.has(serverId) || sshFailure(ctx.store, serverId))) {
      return [];
    }
    return await ctx.runtime.containers(appName, serverId);
  },

  "settings.getDokployVersion": (ctx) => ctx.profile.version,
  "settings.getReleaseTag": () => "latest",
  "settings.health": () => ({ status: "ok" }),
  "settings.isCloud": () => false,
};
