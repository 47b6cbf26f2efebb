/** `stop` (design §5): compose stop; safe on a stopped machine, volumes kept. */
import { hasBackupGuard } from "../backup/guard.ts";
import { stopLeavingGuard } from "../backup/stop.ts";
import { StateError } from "../errors.ts";
import { orUnreachable } from "../servers/unreachable.ts";
import { sshArgv } from "../ssh/argv.ts";
import { closeMux } from "../ssh/mux.ts";
import { deploymentsOf, waitDeployIdle } from "./deploy.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine } from "./locate.ts";
import { sshTarget } from "./ssh_target.ts";
import type { MachineState } from "./state.ts";

export async function stopMachine(d: MachineDeps): Promise<void> {
  const found = await locateMachine(d);
  if (!found.compose) {
    throw new StateError(
      `machine ${d.machine.machineId} does not exist in Dokploy; nothing to stop`,
    );
  }
  let compose = found.compose;
  if (compose.composeStatus === "running") {
    d.log.info("waiting for the running deploy to finish before stopping");
    const deadline = Date.now() + d.config.readyTimeoutMs;
    compose = await waitDeployIdle({ ...d, deadline }, compose) ?? compose;
  }
  // Without a successful deploy no container ever ran, and compose.stop would fail (no
  // compose directory yet). Otherwise stop without asking Docker first: `docker compose
  // stop` is a no-op on a stopped machine, ends a crash loop, and the container list
  // could not prove the machine down anyway ([] is also Dokploy's answer to any error).
  if (!(await deploymentsOf(d.api, compose)).some((x) => x.status === "done")) {
    d.log.info(`machine ${d.machine.machineId} was never deployed; nothing to stop`);
    return;
  }
  d.log.info(`stopping machine ${d.machine.machineId} (volumes are kept)`);
  await closeSharedConnection(d, found.state);
  if (found.state && hasBackupGuard(compose) && await stopLeavingGuard(d, found.state)) return;
  await orUnreachable(
    d.api,
    compose.serverId ?? null,
    "the machine was not stopped",
    () => d.api.stopCompose(compose.composeId),
  );
}

/** A reused SSH master must not outlive the machine it talks to. */
async function closeSharedConnection(d: MachineDeps, state: MachineState | null) {
  if (state) await closeMux(d.machine.machineFolder, sshArgv(sshTarget(d.machine, state)));
}
