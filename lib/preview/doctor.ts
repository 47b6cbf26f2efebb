/**
 * doctor's preview line: every preview URL with its Dokploy domain and its forwarder's
 * port, and a running forwarder beside each running machine that has previews.
 */
import type { DokployApi } from "../dokploy/api.ts";
import type { MachineInfo } from "../machine/inventory.ts";
import type { Check } from "../servers/doctor.ts";
import { PREVIEW_SERVICE } from "./forwarder.ts";

export async function checkPreviews(
  api: DokployApi,
  machines: MachineInfo[],
  report: (c: Check) => Promise<void>,
): Promise<void> {
  const withPreviews = machines.filter((m) => m.previews.length);
  if (!withPreviews.length) {
    await report({
      ok: true,
      name: "previews",
      detail: "none (preview <machine> <port> makes one)",
    });
    return;
  }
  const problems: string[] = [];
  for (const m of withPreviews) {
    for (const p of m.previews) {
      if (p.problem) {
        problems.push(
          `${m.machineId} port ${p.port}: ${p.problem} (preview rm ${m.machineId} ${p.port}, then add it again)`,
        );
      }
    }
    if (m.state !== "Running") continue;
    const containers = await api.containers(m.appName, m.serverId).catch(() => []);
    const forwarder = containers.find((c) =>
      new RegExp(`[-_]${PREVIEW_SERVICE}[-_]\\d+$`).test(c.name)
    );
    if (forwarder?.state.toLowerCase() !== "running") {
      problems.push(
        `${m.machineId}: its preview forwarder is not running (${
          forwarder?.state ?? "no container"
        }); devpod stop and devpod up the workspace`,
      );
    }
  }
  const count = withPreviews.reduce((n, m) => n + m.previews.length, 0);
  await report(
    problems.length ? { ok: false, name: "previews", detail: problems.join("; ") } : {
      ok: true,
      name: "previews",
      detail: `${count} preview URL(s) on ${withPreviews.length} machine(s), each with its domain`,
    },
  );
}
