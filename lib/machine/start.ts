/**
 * `start` (design §5): brings an existing machine up — a redeploy when it was never
 * deployed or its spec changed, else a compose start — and waits for SSH. Safe on a
 * running machine.
 */
import type { Compose } from "../dokploy/api.ts";
import { StateError } from "../errors.ts";
import { CLIENT_KEY, ensureKeyPair } from "../ssh/keys.ts";
import { readopt } from "./adopt.ts";
import { waitForMachine } from "./boot_watch.ts";
import { waitDeployIdle } from "./deploy.ts";
import { deployMachine } from "./deploy_retry.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine } from "./locate.ts";
import { machineComposeFile } from "./spec.ts";
import type { MachineState } from "./state.ts";

export async function startMachine(d: MachineDeps): Promise<void> {
  const deadline = Date.now() + d.config.readyTimeoutMs;
  const found = await locateMachine(d);
  if (!found.compose) {
    throw new StateError(
      `machine ${d.machine.machineId} does not exist in Dokploy (deleted outside DevPod?); run 'devpod up' again to recreate it`,
    );
  }
  const state = found.state ?? await readopt(d, found.compose);
  await ensureUp(d, state, found.compose, deadline);
}

/** Brings an existing machine up: redeploy when its spec changed, else compose start. */
export async function ensureUp(
  d: MachineDeps,
  state: MachineState,
  compose: Compose,
  deadline: number,
): Promise<void> {
  const clientKey = await ensureKeyPair(d.machine.machineFolder, CLIENT_KEY, "");
  const expected = machineComposeFile(d, clientKey.publicKey, state);
  const deployed = (await d.api.deployments(compose.composeId)).some((x) => x.status === "done");
  if (compose.composeStatus === "running") {
    d.log.info("a deploy of this machine is in progress; waiting for it");
    await waitDeployIdle({ ...d, deadline }, compose.composeId);
  }
  if (!deployed || compose.composeFile !== expected) {
    if (compose.composeFile !== expected) {
      d.log.info(
        "machine spec changed (new provider version or options); redeploying, volumes kept",
      );
      await d.api.updateCompose(compose.composeId, { composeFile: expected });
    }
    await deployMachine(d, state, clientKey.publicKey, deadline, {
      title: "devpod: start machine",
      movePort: false,
    });
  } else {
    const containers = await d.api.containers(compose.appName, compose.serverId ?? null);
    if (!containers.some((c) => c.state === "running")) {
      d.log.info(`starting machine ${d.machine.machineId}`);
      await d.api.startCompose(compose.composeId);
    }
  }
  await waitForMachine(d, state, deadline);
  d.log.info(`machine ${d.machine.machineId} is running`);
}
