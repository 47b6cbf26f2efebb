/**
 * `create` (design §5): keys → project → port → compose service → deploy → SSH with
 * the pinned key. Idempotent (a re-run adopts the existing machine), bounded by
 * READY_TIMEOUT, and on failure it removes what it made.
 */
import { join } from "node:path";
import { InterruptedError } from "../errors.ts";
import { removeIfExists } from "../fs.ts";
import { CLIENT_KEY, ensureKeyPair, fingerprint, HOST_KEY, writeKnownHosts } from "../ssh/keys.ts";
import { readopt } from "./adopt.ts";
import { waitForMachine } from "./boot_watch.ts";
import { renderComposeEnv, SSH_USER } from "./compose.ts";
import { deployMachine } from "./deploy_retry.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine, resolveSshHost } from "./locate.ts";
import { appNamePrefix, composeName } from "./naming.ts";
import { portClaims, settlePortRace } from "./port_race.ts";
import { chooseSshPort } from "./ports.ts";
import { ensureProject } from "./project.ts";
import { machineComposeFile, machineDescription } from "./spec.ts";
import { ensureUp } from "./start.ts";
import { type MachineState, STATE_FILE, writeState } from "./state.ts";

function checkAborted(signal: AbortSignal) {
  if (signal.aborted) throw new InterruptedError("interrupted; rolled back what this run created");
}

export async function createMachine(d: MachineDeps): Promise<void> {
  const started = Date.now();
  const deadline = started + d.config.readyTimeoutMs;
  const found = await locateMachine(d);
  if (found.compose) {
    d.log.info(`machine ${d.machine.machineId} already exists in Dokploy; adopting it`);
    const state = found.state ?? await readopt(d, found.compose);
    await ensureUp(d, state, found.compose, deadline);
    return;
  }
  if (found.state) {
    d.log.warn("local state points to a Dokploy service that no longer exists; creating anew");
    await removeIfExists(join(d.machine.machineFolder, STATE_FILE));
  }

  const folder = d.machine.machineFolder;
  await Deno.mkdir(folder, { recursive: true, mode: 0o700 });
  const clientKey = await ensureKeyPair(folder, CLIENT_KEY, `devpod-${d.machine.machineId}`);
  const hostKey = await ensureKeyPair(folder, HOST_KEY, `devpod-host-${d.machine.machineId}`);
  const { projectId, environmentId } = await ensureProject(d);
  const usedPorts = new Set((await portClaims(d)).map((c) => c.sshPort));
  const sshHost = await resolveSshHost(d.api, d.config);
  const sshPort = chooseSshPort(d.config.sshPortRange, usedPorts);
  checkAborted(d.signal);

  d.log.info(`creating machine ${d.machine.machineId} in project "${d.config.projectName}"`);
  const compose = await d.api.createCompose({
    name: composeName(d.machine.machineId),
    appName: appNamePrefix(d.machine.machineId),
    description: machineDescription(d, sshPort),
    environmentId,
    composeFile: machineComposeFile(d, clientKey.publicKey, { sshPort }),
    serverId: d.config.serverId,
  });
  try {
    await d.api.updateCompose(compose.composeId, {
      env: renderComposeEnv(await Deno.readTextFile(hostKey.privatePath)),
    });
    const state: MachineState = {
      version: 1,
      machineId: d.machine.machineId,
      composeId: compose.composeId,
      appName: compose.appName,
      projectId,
      environmentId,
      serverId: d.config.serverId,
      sshHost,
      sshPort,
      sshUser: SSH_USER,
      hostPublicKey: hostKey.publicKey,
      hostKeyFingerprint: await fingerprint(hostKey.publicKey),
      createdAt: new Date().toISOString(),
    };
    // Written before the deploy: a killed run leaves state the next run adopts.
    await writeState(folder, state);
    await writeKnownHosts(folder, sshHost, sshPort, hostKey.publicKey);
    await settlePortRace(d, compose, state, clientKey.publicKey);
    checkAborted(d.signal);
    await deployMachine(d, state, clientKey.publicKey, deadline, {
      title: "devpod: create machine",
      movePort: true,
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
    d.log.warn(
      `could not remove Dokploy service ${composeId} (${
        (err as Error).message
      }); run 'devpod-provider-dokploy cleanup --yes'`,
    );
  }
  await removeIfExists(join(d.machine.machineFolder, STATE_FILE));
}
