/** server.*: remote servers (dokploy-api.md §4.7), their checks and their monitoring. */
import type { Ctx, Input, Procedures } from "../context.ts";
import { ApiError, notFound } from "../errors.ts";
import { fetchMetrics, sshFailure, validation } from "../servers.ts";
import type { ServerRow } from "../store.ts";

export function findServer(ctx: Ctx, serverId: unknown): ServerRow {
  const server = ctx.store.servers.get(String(serverId));
  if (!server) throw notFound("Server");
  return server;
}

const NO_DATA = [
  "No monitoring data available. This could be because:",
  "",
  "1. You don't have setup the monitoring service, you can do in web server section.",
  "2. If you already have setup the monitoring service, wait a few minutes and refresh the page.",
].join("\n");

export const serverProcedures: Procedures = {
  // The table's columns plus totalSum (the services on it), newest first.
  "server.all": (ctx) =>
    [...ctx.store.servers.values()]
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .map((s) => ({
        ...s,
        totalSum: [...ctx.store.composes.values()].filter((c) => c.serverId === s.serverId)
          .length,
      })),

  // findServerById (with deployments and sshKey), the private key blanked.
  "server.one": (ctx, input: Input) => {
    const server = findServer(ctx, input.serverId);
    const key = server.sshKeyId ? ctx.store.sshKeys.get(server.sshKeyId) : undefined;
    return {
      ...server,
      deployments: [...ctx.store.deployments.values()].filter((d) =>
        d.serverId === server.serverId
      ),
      sshKey: key ? { ...key, privateKey: "" } : null,
    };
  },

  "server.publicIp": () => null,

  // serverValidate runs a script over SSH; the router turns every failure into 400.
  "server.validate": (ctx, input: Input) => {
    const server = ctx.store.servers.get(String(input.serverId));
    if (!server) throw new ApiError("BAD_REQUEST", "Server not found");
    if (!server.sshKeyId) throw new ApiError("BAD_REQUEST", "No SSH Key found");
    const failure = sshFailure(ctx.store, server.serverId);
    if (failure) throw new ApiError("BAD_REQUEST", failure);
    return validation();
  },

  // Dokploy fetches `${url}?limit=${dataPoints}` with `Authorization: Bearer <token>`;
  // any failure is a plain Error, so a 500 with its message.
  "server.getServerMetrics": (ctx, input: Input) => {
    let url: URL;
    try {
      url = new URL(String(input.url));
    } catch {
      throw new ApiError("INTERNAL_SERVER_ERROR", "Invalid URL");
    }
    url.searchParams.append("limit", String(input.dataPoints));
    const res = fetchMetrics(ctx, url, String(input.token));
    if ("error" in res) throw new ApiError("INTERNAL_SERVER_ERROR", res.error);
    if (!res.ok) {
      throw new ApiError(
        "INTERNAL_SERVER_ERROR",
        `Error ${res.status}: ${res.statusText}. Ensure the container is running and this ` +
          "service is included in the monitoring configuration.",
      );
    }
    if (!Array.isArray(res.points) || res.points.length === 0) {
      throw new ApiError("INTERNAL_SERVER_ERROR", NO_DATA);
    }
    return res.points;
  },
};
