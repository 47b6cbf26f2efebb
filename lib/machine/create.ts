/**
 * `create` (design §5): keys → project → port → compose service → deploy → SSH with
 * the pinned key. Idempotent (a re-run adopts the existing machine), bounded by
 * READY_TIMEOUT, and on failure it removes what it made.
 */
import { join } from "node:path";
import { ensureImageCache, settleImageCache } from "../cache/ensure.ts";
import { InterruptedError } from "../errors.ts";
import { removeIfExists } from "../fs.ts";
import { CLIENT_KEY, ensureKeyPair, fingerprint, HOST_KEY, writeKnownHosts } from "../ssh/keys.ts";
import { waitForMachine } from "./boot_watch.ts";
import { renderComposeEnv, SSH_USER } from "./compose.ts";
import { createComposeOnce } from "./create_service.ts";
import { deployMachine } from "./deploy_retry.ts";
import type { MachineDeps } from "./deps.ts";
import { locateByState, resolveSshHost } from "./locate.ts";
import { appNamePrefix, composeName } from "./naming.ts";
import { portClaims, settlePortRace } from "./port_race.ts";
import { chooseSshPort } from "./ports.ts";
import {
  ensureProject,
  machineIn,
  readProjectSnapshot,
  refreshProjectSnapshot,
} from "./project.ts";
import { machineComposeFile, machineDescription, publishSpec } from "./spec.ts";
import { upExisting } from "./start.ts";
import { type MachineState, STATE_FILE, writeState } from "./state.ts";

function checkAborted(signal: AbortSignal) {
  if (signal.aborted) throw new InterruptedError("interrupted; rolled back what this run created");
}

export async function createMachine(d: MachineDeps): Promise<void> {
  const started = Date.now();
  const deadline = started + d.config.readyTimeoutMs;
  const byState = await locateByState(d);
  if (byState?.compose) {
    d.log.info(`machine ${d.machine.machineId} already exists in Dokploy; adopting it`);
    return await upExisting(d, byState.state, byState.compose, deadline);
  }
  if (byState) {
    d.log.warn("local state points to a Dokploy service that no longer exists; creating anew");
    await removeIfExists(join(d.machine.machineFolder, STATE_FILE));
  }
  // The one project read of this run: finds a machine whose state.json was lost, the
  // project's environment and the ports already claimed.
  const snapshot = await readProjectSnapshot(d.api, d.config.projectName);
  const listed = machineIn(snapshot, d.machine.machineId);
  const existing = listed && await d.api.composeOne(listed.composeId);
  if (existing) {
    d.log.info(`machine ${d.machine.machineId} already exists in Dokploy; adopting it`);
    return await upExisting(d, null, existing, deadline);
  }

  const folder = d.machine.machineFolder;
  await Deno.mkdir(folder, { recursive: true, mode: 0o700 });
  const clientKey = await ensureKeyPair(folder, CLIENT_KEY, `devpod-${d.machine.machineId}`);
  const hostKey = await ensureKeyPair(folder, HOST_KEY, `devpod-host-${d.machine.machineId}`);
  const project = await ensureProject(d, snapshot);
  let claimsFrom = project.snapshot;
  // Parallel creates race for ports: after ours is claimed, re-read (project.one only).
  const readClaims = async () => {
    claimsFrom = await refreshProjectSnapshot(d.api, claimsFrom);
    return portClaims(claimsFrom, d.config.serverId);
  };
  const sshHost = await resolveSshHost(d.api, d.config);
  const usedPorts = portClaims(claimsFrom, d.config.serverId).map((c) => c.sshPort);
  const sshPort = chooseSshPort(d.config.sshPortRange, new Set(usedPorts));
  checkAborted(d.signal);
  const cachePlan = await ensureImageCache(d, claimsFrom, project.environmentId);
  const imageCache = cachePlan.appName;

  d.log.info(`creating machine ${d.machine.machineId} in project "${d.config.projectName}"`);
  const compose = await createComposeOnce(d, {
    name: composeName(d.machine.machineId),
    appName: appNamePrefix(d.machine.machineId),
    description: machineDescription(d, sshPort),
    environmentId: project.environmentId,
    composeFile: machineComposeFile(d, clientKey.publicKey, { sshPort, imageCache }),
    serverId: d.config.serverId,
  }, claimsFrom);
  try {
    // compose.create takes no env (dokploy-openapi.json): the secret needs this update.
    await d.api.updateCompose(compose.composeId, {
      env: renderComposeEnv(await Deno.readTextFile(hostKey.privatePath)),
    });
    const state: MachineState = {
      version: 1,
      machineId: d.machine.machineId,
      composeId: compose.composeId,
      appName: compose.appName,
      projectId: project.projectId,
      environmentId: project.environmentId,
      serverId: d.config.serverId,
      sshHost,
      sshPort,
      sshUser: SSH_USER,
      hostPublicKey: hostKey.publicKey,
      hostKeyFingerprint: await fingerprint(hostKey.publicKey),
      createdAt: new Date().toISOString(),
      ...(imageCache ? { imageCache } : {}),
    };
    // Written before the deploy: a killed run leaves state the next run adopts.
    await writeState(folder, state);
    await writeKnownHosts(folder, sshHost, sshPort, hostKey.publicKey);
    await settlePortRace(d, compose, state, clientKey.publicKey, readClaims);
    // The port check's re-read also settles parallel first caches; deployed before the machine.
    const settled = await settleImageCache(d, cachePlan, claimsFrom);
    if (settled !== imageCache) {
      if (settled) state.imageCache = settled;
      else delete state.imageCache;
      await publishSpec(d, state, clientKey.publicKey);
    }
    checkAborted(d.signal);
    await deployMachine(d, state, clientKey.publicKey, deadline, {
      title: "devpod: create machine",
      deployments: [], // a service this run created has none yet
      readClaims,
    });
    await waitForMachine(d, state, deadline);
    d.log.info(
      `machine ready at ${SSH_USER}@${state.sshHost}:${state.sshPort} in ${
        ((Date.now() - started) / 1000).toFixed(1)
      }s`,
    );
  } catch (err) {
    await rollbackCreate(d, compose.composeId);
    throw err;
  }
}

async function rollbackCreate(d: MachineDeps, composeId: string): Promise<void> {
  d.log.info("create failed; removing what this run created");
  try {
    await d.api.deleteCompose(composeId, true);
  } catch (err) {
    // Its marker finds it again: no state.json is needed to adopt or remove it later.
    d.log.warn(
      `could not remove Dokploy service ${composeId} (${
        (err as Error).message
      }); the next create of machine ${d.machine.machineId} adopts it, the next delete removes it`,
    );
  }
  await removeIfExists(join(d.machine.machineFolder, STATE_FILE));
}
