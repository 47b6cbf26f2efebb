/**
 * doctor's preview lines: one per preview URL, checking its Dokploy domain, that its
 * forwarder runs, and the path itself: a request through the forwarder reaches the
 * machine's relay (path_check.ts).
 */
import type { DokployApi } from "../dokploy/api.ts";
import type { Env } from "../context/machine.ts";
import { candidateHomes, machineFolders } from "../devpod_home.ts";
import type { MachineInfo } from "../machine/inventory.ts";
import { sshTarget } from "../machine/ssh_target.ts";
import { readState } from "../machine/state.ts";
import type { Check } from "../servers/doctor.ts";
import type { SshTarget } from "../ssh/argv.ts";
import { PREVIEW_SERVICE } from "./forwarder.ts";
import { type PathResult, probePaths } from "./path_check.ts";

export interface PreviewCheckDeps {
  env: Env;
  /** The probe over SSH (tests put their own). */
  probe?: typeof probePaths;
}

export async function checkPreviews(
  api: DokployApi,
  machines: MachineInfo[],
  report: (c: Check) => Promise<void>,
  deps: PreviewCheckDeps,
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
  for (const m of withPreviews) {
    const paths = await pathsOf(api, m, deps);
    for (const p of m.previews) {
      const name = `preview ${m.machineId}:${p.port}`;
      const where = p.url ?? "no URL";
      if (p.problem) {
        await report({
          ok: false,
          name,
          detail: `${p.problem} (preview rm ${m.machineId} ${p.port}, then add it again)`,
        });
        continue;
      }
      const path = paths instanceof Map ? paths.get(p.port)! : paths;
      await report({ ok: path.ok, name, detail: `${where}: ${path.detail}` });
    }
  }
}

/** Each previewed port's path, or one verdict for all of them when it cannot be probed. */
async function pathsOf(
  api: DokployApi,
  m: MachineInfo,
  deps: PreviewCheckDeps,
): Promise<Map<number, PathResult> | PathResult> {
  if (m.state !== "Running") {
    return { ok: true, detail: `path not checked: the machine is ${m.state.toLowerCase()}` };
  }
  const containers = await api.containers(m.appName, m.serverId).catch(() => []);
  const forwarder = containers.find((c) =>
    new RegExp(`[-_]${PREVIEW_SERVICE}[-_]\\d+$`).test(c.name)
  );
  if (forwarder?.state.toLowerCase() !== "running") {
    return {
      ok: false,
      detail: `its preview forwarder is not running (${
        forwarder?.state ?? "no container"
      }); devpod stop and devpod up the workspace`,
    };
  }
  const target = await localTarget(deps.env, m);
  if (!target) {
    return {
      ok: true,
      detail: "path not checked: this computer has no folder of the machine (made elsewhere?)",
    };
  }
  try {
    return await (deps.probe ?? probePaths)(target, m.appName, m.previews.map((p) => p.port));
  } catch (err) {
    return {
      ok: false,
      detail: `path not checked: SSH to the machine failed (${
        (err as Error).message
      }); devpod ssh <workspace> shows why`,
    };
  }
}

/** The machine's SSH endpoint from its DevPod folder on this computer, if there is one. */
async function localTarget(env: Env, m: MachineInfo): Promise<SshTarget | null> {
  for (const home of candidateHomes(env)) {
    for (const folder of await machineFolders(home, m.machineId)) {
      const state = await readState(folder).catch(() => null);
      if (state?.composeId === m.composeId) {
        return sshTarget({ machineId: m.machineId, machineFolder: folder }, state);
      }
    }
  }
  return null;
}
