/**
 * `doctor`'s view of the servers (issue 13): what DOKPLOY_SERVER_ID means now, then one
 * line per remote server — active, reachable by Dokploy over SSH, and our running
 * machines' SSH ports reachable from here — naming the one that fails.
 */
import type { ProviderConfig } from "../config.ts";
import type { DokployApi, Server } from "../dokploy/api.ts";
import type { MachineInfo } from "../machine/inventory.ts";
import { sshHostFor } from "../machine/locate.ts";
import { tcpOpen } from "../ssh/ready.ts";
import { findServer, isUsable, listing } from "./directory.ts";
import { whyUnreachable } from "./unreachable.ts";

export type Check = { ok: boolean; name: string; detail: string };
type Report = (c: Check) => Promise<void>;

/** What a create would do with DOKPLOY_SERVER_ID; the remote server it names, if any. */
export async function checkTarget(
  config: ProviderConfig,
  servers: Server[],
  report: Report,
): Promise<void> {
  const name = "target server";
  const choice = config.server;
  if (choice.kind === "local") {
    return await report({
      ok: true,
      name,
      detail: `the Dokploy host${servers.length ? ` (${listing(servers)})` : ""}`,
    });
  }
  if (choice.kind === "auto") {
    const usable = servers.filter(isUsable);
    return await report({
      ok: true,
      name,
      detail: usable.length
        ? `auto: placed among ${usable.map((s) => s.name).join(", ")} by headroom`
        : "auto: no active deploy server, so the Dokploy host",
    });
  }
  try {
    const s = findServer(servers, choice.ref);
    await report({ ok: true, name, detail: `${s.name} (${s.serverId}, ${s.ipAddress})` });
  } catch (err) {
    await report({ ok: false, name, detail: (err as Error).message });
  }
}

/** One line per place machines live: remote servers, and the Dokploy host when it has any. */
export async function checkServers(
  config: ProviderConfig,
  api: DokployApi,
  servers: Server[],
  machines: MachineInfo[],
  report: Report,
): Promise<void> {
  const local = machines.filter((m) => m.serverId === null);
  if (local.length || servers.length === 0) {
    await report(await portsCheck(config, "Dokploy host", sshHostFor(config, null), local));
  }
  for (const s of servers) {
    const name = `server ${s.name}`;
    const mine = machines.filter((m) => m.serverId === s.serverId);
    if ((s.serverType ?? "deploy") === "build") {
      await report({ ok: true, name, detail: "build server: never holds machines" });
      continue;
    }
    const unreachable = await whyUnreachable(api, s.serverId);
    if (unreachable) {
      await report({
        ok: false,
        name,
        detail:
          `Dokploy cannot reach ${s.ipAddress} (${unreachable}); ${mine.length} machine(s) there; fix its SSH access in Dokploy (Remote Servers)`,
      });
      continue;
    }
    if (!isUsable(s)) {
      await report({
        ok: mine.length === 0,
        name,
        detail: `inactive in Dokploy: never chosen${
          mine.length ? `, yet ${mine.length} machine(s) of ours live there` : ""
        }`,
      });
      continue;
    }
    await report(await portsCheck(config, name, sshHostFor(config, s), mine));
  }
}

async function portsCheck(
  config: ProviderConfig,
  name: string,
  host: string,
  machines: MachineInfo[],
): Promise<Check> {
  const running = machines.filter((m) => m.state === "Running");
  const closed: number[] = [];
  for (const m of running) if (!(await tcpOpen(host, m.sshPort))) closed.push(m.sshPort);
  if (closed.length) {
    return {
      ok: false,
      name,
      detail: `ports ${
        closed.join(", ")
      } on ${host} are not reachable from here; open SSH_PORT_RANGE ${config.sshPortRange.from}-${config.sshPortRange.to} in its firewall or set SSH_HOST`,
    };
  }
  return {
    ok: true,
    name,
    detail: running.length
      ? `${running.length} running machine(s) reachable on ${host}`
      : `reachable; no running machine of ours on ${host}`,
  };
}
