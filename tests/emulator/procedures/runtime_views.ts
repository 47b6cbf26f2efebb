/** deployment.*, docker.*, server.* and settings.*: read-only views of the emulator. */
import type { Input, Procedures } from "../context.ts";
import { notFound } from "../errors.ts";
import type { ContainerInfo } from "../machine/runtime.ts";
import { findCompose } from "./compose.ts";

/** Docker's units.HumanDuration, as in `docker ps` STATUS. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  if (h < 24 * 14) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 60) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 730) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

export function dockerStatus(c: ContainerInfo, at = Date.now()): string {
  if (c.state === "running") return `Up ${humanDuration(at - (c.startedAt ?? at))}`;
  if (c.state === "exited") {
    return `Exited (${c.exitCode}) ${humanDuration(at - (c.finishedAt ?? at))} ago`;
  }
  return "Created";
}

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

  // `docker ps -a` filtered by name, on the Dokploy host or on `serverId`.
  "docker.getContainersByAppNameMatch": (ctx, input: Input) => {
    const appName = String(input.appName);
    const serverId = (input.serverId as string | undefined) || null;
    const nameMatches = (name: string) =>
      input.appType === "docker-compose" ? name.startsWith(`${appName}-`) : name.includes(appName);
    return ctx.runtime.containers()
      .filter((c) => c.serverId === serverId && nameMatches(c.name))
      .map((c) => ({
        containerId: c.containerId.slice(0, 12),
        name: c.name,
        state: c.state,
        status: dockerStatus(c),
      }));
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
