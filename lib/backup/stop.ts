/**
 * `stop` of a machine with backups: the machine stops itself (as on an idle stop) and its
 * backup guard keeps running, so the nightly backup of a stopped machine still finds the
 * container Dokploy's `turnOff` stops. A compose stop would stop the guard too.
 */
import type { MachineDeps } from "../machine/deps.ts";
import { sshTarget } from "../machine/ssh_target.ts";
import type { MachineState } from "../machine/state.ts";
import { machineContainers } from "../machine/status.ts";
import { sleep, sshRun } from "../ssh/ready.ts";
import { MACHINE_CONTROL_DIR } from "./guard.ts";

/** The bootstrap takes up to ~25 s to stop sshd, sessions and dockerd (stop_pids 20). */
const STOP_WAIT_MS = 90_000;

/**
 * Asks the machine to stop itself and waits until its container has exited. False when
 * it could not be asked or did not stop in time: the caller stops it through Dokploy.
 */
export async function stopLeavingGuard(d: MachineDeps, state: MachineState): Promise<boolean> {
  const exited = async () => {
    const mine = machineContainers(await d.api.containers(state.appName, state.serverId));
    return mine.length > 0 && mine.every((c) => c.state.toLowerCase() !== "running");
  };
  // Already stopped (idle stop, or a second `stop`): the guard stays up.
  if (await exited()) return true;
  const asked = await sshRun(
    sshTarget(d.machine, state),
    15,
    `: > ${MACHINE_CONTROL_DIR}/requests/stop`,
  );
  if (!asked.ok) {
    d.log.warn(
      `the machine did not take the stop request over SSH (${
        asked.stderr.trim().split("\n")[0] || "no answer"
      }); stopping it through Dokploy, which stops its backup guard too: backups of this machine fail until it starts again`,
    );
    return false;
  }
  const deadline = Date.now() + STOP_WAIT_MS;
  while (Date.now() < deadline && !d.signal.aborted) {
    if (await exited()) return true;
    await sleep(1000, d.signal);
  }
  d.log.warn("the machine did not stop by itself within 90 s; stopping it through Dokploy");
  return false;
}
