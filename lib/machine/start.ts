/**
 * `start` (design §5): brings an existing machine up — a redeploy when it was never
 * deployed or its spec changed, else a compose start — and waits for SSH. Safe on a
 * running machine.
 */
import { scheduleBackups } from "../backup/register.ts";
import { dropImageCacheFor } from "../cache/fallback.ts";
import type { Compose } from "../dokploy/api.ts";
import { DokployError, StateError } from "../errors.ts";
import { orUnreachable } from "../servers/unreachable.ts";
import { CLIENT_KEY, ensureKeyPair } from "../ssh/keys.ts";
import { confirmOwner, readopt } from "./adopt.ts";
import { waitForMachine } from "./boot_watch.ts";
import { deploymentsOf, waitDeployIdle } from "./deploy.ts";
import { deployMachine } from "./deploy_retry.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine } from "./locate.ts";
import { isLostDeploy } from "./lost_deploy.ts";
import { previewsIn } from "../preview/forwarder.ts";
import { machineComposeFile, publishSpec } from "./spec.ts";
import type { MachineState } from "./state.ts";

export async function startMachine(d: MachineDeps): Promise<void> {
  const deadline = Date.now() + d.config.readyTimeoutMs;
  const found = await locateMachine(d, "allow");
  if (!found.compose) {
    throw new StateError(
      `machine ${d.machine.machineId} does not exist in Dokploy (deleted outside DevPod?); run 'devpod up' again to recreate it`,
    );
  }
  await upExisting(d, found.state, found.compose, deadline);
}

/** An existing service (compose.one's row): re-adopted when state.json is lost, then brought up. */
export async function upExisting(
  d: MachineDeps,
  state: MachineState | null,
  compose: Compose,
  deadline: number,
): Promise<void> {
  const owned = state ? await confirmOwner(d, state, compose) : await readopt(d, compose);
  await ensureUp(d, owned, compose, deadline);
}

/** How often a wait for someone else's deploy asks again whether it was lost. */
const LOST_RECHECK_MS = 15_000;

/** Brings an existing machine up: redeploy when its spec changed, else compose start. */
async function ensureUp(
  d: MachineDeps,
  state: MachineState,
  compose: Compose,
  deadline: number,
): Promise<void> {
  const clientKey = await ensureKeyPair(d.machine.machineFolder, CLIENT_KEY, "");
  // Previews are kept in Dokploy's copy only (`preview` may run elsewhere): carried over.
  state.previews = previewsIn(compose.composeFile);
  const expected = machineComposeFile(d, clientKey.publicKey, state);
  let lost = false;
  let announced = false;
  // A deploy in progress is waited for; one that turns out lost (Dokploy restarted while
  // it ran: it reads `running` for ever) is deployed again. The lost test is free while
  // the deploy is young, so it is asked again between short waits.
  while (compose.composeStatus === "running" && Date.now() < deadline) {
    const newest = (await deploymentsOf(d.api, compose))[0];
    lost = await isLostDeploy(d.api, compose, newest, { signal: d.signal });
    if (lost) {
      d.log.warn(
        "the last deploy of this machine was lost (Dokploy restarted while it ran); deploying it again",
      );
      break;
    }
    if (!announced) d.log.info("a deploy of this machine is in progress; waiting for it");
    announced = true;
    const slice = Math.min(deadline, Date.now() + LOST_RECHECK_MS);
    compose = await waitDeployIdle({ ...d, deadline: slice }, compose) ?? compose;
  }
  const deployments = await deploymentsOf(d.api, compose);
  const neverDeployed = !deployments.some((x) => x.status === "done");
  if (lost || neverDeployed || compose.composeFile !== expected) {
    if (compose.composeFile !== expected) {
      d.log.info(
        "machine spec changed (new provider version or options); redeploying, volumes kept",
      );
      await d.api.updateCompose(compose.composeId, { composeFile: expected });
    }
    await deployMachine(d, state, clientKey.publicKey, deadline, {
      title: "devpod: start machine",
      deployments: deployments.map((x) => x.deploymentId),
    });
  } else {
    // compose.start is `docker compose up -d`: a no-op on a running machine, so no
    // container check first; it also revives a crash-looping or self-stopped one.
    d.log.info(`starting machine ${d.machine.machineId}`);
    try {
      await orUnreachable(
        d.api,
        state.serverId,
        "the machine was not started",
        () => d.api.startCompose(compose.composeId),
      );
    } catch (err) {
      // Docker refused (a 500 names only the command line): a deploy shows why in its
      // log, and fixes what is ours to fix, such as an image cache that is gone.
      if (!(err instanceof DokployError) || err.transport || (err.status ?? 0) < 500) throw err;
      d.log.info(`compose start failed (${err.message}); deploying the machine again`);
      if (dropImageCacheFor(err, d, state)) await publishSpec(d, state, clientKey.publicKey);
      await deployMachine(d, state, clientKey.publicKey, deadline, {
        title: "devpod: start machine",
        deployments: deployments.map((x) => x.deploymentId),
      });
    }
  }
  await waitForMachine(d, state, deadline);
  await scheduleBackups(d, state);
  d.log.info(`machine ${d.machine.machineId} is running`);
}
