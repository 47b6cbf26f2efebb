/** deployment.*, docker.*, server.* and settings.*: read-only views of the emulator. */
import type { Input, Procedures } from "../context.ts";
import { notFound } from "../errors.ts";
import { findCompose } from "./compose.ts";

export const runtimeProcedures: Procedures = {
  "deployment.allByCompose": (ctx, input: Input) => {
    const c = findCompose(ctx, input.composeId);
    return ctx.store.deploymentsOf(c.composeId);
  },

  "deployment.readLogs": async (ctx, input: Input) => {
    const d = ctx.store.deployments.get(String(input.deploymentId));
    if (!d) throw notFound("Deployment");
    const text = await Deno.readTextFile(d.logPath).catch(() => "");
    const lines = text.replace(/\n$/, "").split("\n");
    return lines.slice(-Number(input.tail ?? 100)).join("\n");
  },

  // `docker ps -a --filter label=com.docker.compose.project=<appName>`, run on the server
  // the service lives on: asked on another server, it finds nothing.
  "docker.getContainersByAppNameMatch": async (ctx, input: Input) => {
    const appName = String(input.appName);
    const serverId = (input.serverId as string | undefined) || null;
    const owner = [...ctx.store.composes.values()].find((c) => c.appName === appName);
    if (owner && (owner.serverId ?? null) !== serverId) return [];
    return await ctx.runtime.containers(appName);
  },

  "server.all": (ctx) => [...ctx.store.servers.values()],

  "server.one": (ctx, input: Input) => {
    const server = ctx.store.servers.get(String(input.serverId));
    if (!server) throw notFound("Server");
    return server;
  },

  "server.publicIp": () => null,

  "settings.getDokployVersion": (ctx) => ctx.profile.version,
  "settings.getReleaseTag": () => "latest",
  "settings.health": () => ({ status: "ok" }),
  "settings.isCloud": () => false,
};
