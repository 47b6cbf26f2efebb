/** `stop` (design §5): compose stop; safe on a stopped machine, volumes kept. */
import { StateError } from "../errors.ts";
import { sshArgv } from "../ssh/argv.ts";
import { closeMux } from "../ssh/mux.ts";
import { waitDeployIdle } from "./deploy.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine } from "./locate.ts";
import { sshTarget } from "./ssh_target.ts";
import type { MachineState } from "./state.ts";

/** Container states with nothing left to stop. */
const STOPPED = new Set(["exited", "dead", "created"]);

export async function stopMachine(d: MachineDeps): Promise<void> {
  const found = await locateMachine(d);
  if (!found.compose) {
    throw new StateError(
      `machine ${d.machine.machineId} does not exist in Dokploy; nothing to stop`,
    );
  }
  const compose = found.compose;
  if (compose.composeStatus === "running") {
    d.log.info("waiting for the running deploy to finish before stopping");
    await waitDeployIdle(
      { ...d, deadline: Date.now() + d.config.readyTimeoutMs },
      compose.composeId,
    );
  }
  const containers = await d.api.containers(compose.appName, compose.serverId ?? null);
  // Dokploy answers [] when Docker errs, so [] after a good deploy still gets a stop;
  // a never-deployed service (stop would fail with a 500) or exited container does not.
  // A restarting one does: stopping is what ends a crash loop.
  const down = containers.every((c) => STOPPED.has(c.state.toLowerCase()));
  if (down && (containers.length > 0 || compose.composeStatus !== "done")) {
    d.log.info(`machine ${d.machine.machineId} is already stopped`);
    return;
  }
  d.log.info(`stopping machine ${d.machine.machineId} (volumes are kept)`);
  await closeSharedConnection(d, found.state);
  await d.api.stopCompose(compose.composeId);
}

/** A reused SSH master must not outlive the machine it talks to. */
async function closeSharedConnection(d: MachineDeps, state: MachineState | null) {
  if (state) await closeMux(d.machine.machineFolder, sshArgv(sshTarget(d.machine, state)));
}
