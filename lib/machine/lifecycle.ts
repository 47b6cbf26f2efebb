/**
 * The machine lifecycle (design §5): create, start, stop, delete, status. Each verb
 * is idempotent, bounded in time, and leaves nothing behind when it fails.
 */
import { join } from "node:path";
import type { Compose } from "../dokploy/api.ts";
import { InterruptedError, ProviderError, StateError } from "../errors.ts";
import { removeIfExists } from "../fs.ts";
import {
  CLIENT_KEY,
  ensureKeyPair,
  fingerprint,
  HOST_KEY,
  KNOWN_HOSTS,
  writeKnownHosts,
} from "../ssh/keys.ts";
import { sshArgv } from "../ssh/argv.ts";
import { closeMux } from "../ssh/mux.ts";
import { sleep, waitUntilReachable } from "../ssh/ready.ts";
import { renderComposeEnv, renderComposeFile, SSH_USER } from "./compose.ts";
import { deployAndWait, isPortTaken } from "./deploy.ts";
import { appNamePrefix, composeName, describeMachine, parseMarker } from "./naming.ts";
import { chooseSshPort, mustYieldPort, type PortClaim } from "./ports.ts";
import type { MachineDeps } from "./deps.ts";
import { locateMachine, markedComposes, resolveSshHost } from "./locate.ts";
import { sshTarget } from "./ssh_target.ts";
import { type MachineState, STATE_FILE, writeState } from "./state.ts";

const PORT_ATTEMPTS = 4;

function checkAborted(signal: AbortSignal) {
  if (signal.aborted) throw new InterruptedError("interrupted; rolled back what this run created");
}

// ---------------------------------------------------------------------------- create

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
  let sshPort = chooseSshPort(d.config.sshPortRange, usedPorts);
  checkAborted(d.signal);

  d.log.info(`creating machine ${d.machine.machineId} in project "${d.config.projectName}"`);
  const compose = await d.api.createCompose({
    name: composeName(d.machine.machineId),
    appName: appNamePrefix(d.machine.machineId),
    description: describe(d, sshPort),
    environmentId,
    composeFile: render(d, clientKey.publicKey, sshPort),
    serverId: d.config.serverId,
  });
  try {
    await d.api.updateCompose(compose.composeId, {
      env: renderComposeEnv(await Deno.readTextFile(hostKey.privatePath)),
    });
    sshPort = await settlePortRace(d, compose, sshPort, clientKey.publicKey);
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
    checkAborted(d.signal);
    await deployWithFreePort(d, state, clientKey.publicKey, deadline);
    await waitForSsh(d, state, deadline);
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

/** Two creates that picked the same port: the later claimant moves (see ports.ts). */
async function settlePortRace(
  d: MachineDeps,
  compose: Compose,
  port: number,
  authorizedKey: string,
): Promise<number> {
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const claims = await portClaims(d);
    const mine = {
      composeId: compose.composeId,
      createdAt: compose.createdAt ?? "",
      sshPort: port,
    };
    if (!mustYieldPort(mine, claims)) return port;
    const used = new Set(claims.map((c) => c.sshPort));
    port = chooseSshPort(d.config.sshPortRange, used);
    d.log.debug(`port race lost; moving to ${port}`);
    await d.api.updateCompose(compose.composeId, {
      composeFile: render(d, authorizedKey, port),
      description: describe(d, port),
    });
  }
  return port;
}

/** Deploys; when the port is held by something outside our project, moves once more. */
async function deployWithFreePort(
  d: MachineDeps,
  state: MachineState,
  authorizedKey: string,
  deadline: number,
): Promise<void> {
  const tried = new Set<number>([state.sshPort]);
  for (let attempt = 1;; attempt++) {
    try {
      await deployAndWait({ ...d, deadline }, state.composeId, "devpod: create machine");
      return;
    } catch (err) {
      if (!isPortTaken(err) || attempt >= PORT_ATTEMPTS) throw err;
      const claims = await portClaims(d);
      for (const c of claims) tried.add(c.sshPort);
      state.sshPort = chooseSshPort(d.config.sshPortRange, tried);
      tried.add(state.sshPort);
      d.log.info(`port taken on the server; retrying on ${state.sshPort}`);
      await d.api.updateCompose(state.composeId, {
        composeFile: render(d, authorizedKey, state.sshPort),
        description: describe(d, state.sshPort),
      });
      await writeState(d.machine.machineFolder, state);
      await writeKnownHosts(
        d.machine.machineFolder,
        state.sshHost,
        state.sshPort,
        state.hostPublicKey,
      );
    }
  }
}

/** The SSH ports our machines on the target server have published. */
async function portClaims(d: MachineDeps): Promise<PortClaim[]> {
  return (await markedComposes(d.api, d.config.projectName))
    .filter(({ compose }) => (compose.serverId ?? null) === d.config.serverId)
    .map(({ compose, marker }) => ({
      composeId: compose.composeId,
      createdAt: compose.createdAt ?? "",
      sshPort: marker.sshPort,
    }));
}

/**
 * The project and its default environment, created when missing. Parallel first
 * creates may each make one: all converge on the oldest and drop their own extra.
 */
async function ensureProject(
  d: MachineDeps,
): Promise<{ projectId: string; environmentId: string }> {
  const named = () =>
    d.api.projects().then((all) =>
      all.filter((p) => p.name === d.config.projectName)
        .sort((a, b) =>
          String(a.createdAt ?? "").localeCompare(String(b.createdAt ?? "")) ||
          a.projectId.localeCompare(b.projectId)
        )
    );
  let candidates = await named();
  if (candidates.length === 0) {
    d.log.info(`creating Dokploy project "${d.config.projectName}"`);
    const mine = await d.api.createProject(
      d.config.projectName,
      "DevPod workspaces (managed by devpod-provider-dokploy)",
    );
    candidates = await named();
    const canonical = candidates[0] ?? mine;
    if (canonical.projectId !== mine.projectId) {
      await d.api.removeProject(mine.projectId).catch(() => {});
    }
  }
  const project = await d.api.project(candidates[0]?.projectId ?? "");
  if (!project) {
    throw new StateError(`Dokploy project "${d.config.projectName}" vanished; run again`);
  }
  const envs = project.environments ?? [];
  const env = envs.find((e) => e.isDefault) ?? envs.find((e) => e.name === "production") ?? envs[0];
  if (!env) {
    throw new ProviderError(
      `Dokploy project "${project.name}" has no environment; add one in Dokploy or pick another DOKPLOY_PROJECT_NAME`,
    );
  }
  return { projectId: project.projectId, environmentId: env.environmentId };
}

/** state.json is gone but the service exists: rebuild it from Dokploy + local keys. */
async function readopt(d: MachineDeps, compose: Compose): Promise<MachineState> {
  const folder = d.machine.machineFolder;
  const marker = parseMarker(compose.description);
  if (!marker) {
    throw new StateError(`Dokploy service ${compose.composeId} carries no machine marker`);
  }
  const clientKey = await ensureKeyPair(folder, CLIENT_KEY, `devpod-${d.machine.machineId}`);
  const hostKey = await ensureKeyPair(folder, HOST_KEY, `devpod-host-${d.machine.machineId}`);
  const sshHost = await resolveSshHost(d.api, d.config);
  const state: MachineState = {
    version: 1,
    machineId: d.machine.machineId,
    composeId: compose.composeId,
    appName: compose.appName,
    projectId: "",
    environmentId: compose.environmentId ?? "",
    serverId: compose.serverId ?? null,
    sshHost,
    sshPort: marker.sshPort,
    sshUser: SSH_USER,
    hostPublicKey: hostKey.publicKey,
    hostKeyFingerprint: await fingerprint(hostKey.publicKey),
    createdAt: compose.createdAt ?? new Date().toISOString(),
  };
  const expected = render(d, clientKey.publicKey, marker.sshPort);
  if (compose.composeFile !== expected) {
    // Our keys are not the ones the machine trusts (or the spec moved on): hand the
    // machine this folder's keys; the volumes, and so the user's data, stay.
    d.log.info("re-establishing this machine's SSH keys from the local machine folder");
    await d.api.updateCompose(compose.composeId, {
      composeFile: expected,
      env: renderComposeEnv(await Deno.readTextFile(hostKey.privatePath)),
    });
  }
  await writeState(folder, state);
  await writeKnownHosts(folder, sshHost, state.sshPort, hostKey.publicKey);
  return state;
}

// ----------------------------------------------------------------------------- start

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
async function ensureUp(
  d: MachineDeps,
  state: MachineState,
  compose: Compose,
  deadline: number,
): Promise<void> {
  const clientKey = await ensureKeyPair(d.machine.machineFolder, CLIENT_KEY, "");
  const expected = render(d, clientKey.publicKey, state.sshPort);
  const deployed = (await d.api.deployments(compose.composeId)).some((x) => x.status === "done");
  if (compose.composeStatus === "running") {
    d.log.info("a deploy of this machine is in progress; waiting for it");
    await waitDeployIdle(d, compose.composeId, deadline);
  }
  if (!deployed || compose.composeFile !== expected) {
    if (compose.composeFile !== expected) {
      d.log.info(
        "machine spec changed (new provider version or options); redeploying, volumes kept",
      );
      await d.api.updateCompose(compose.composeId, { composeFile: expected });
    }
    await deployAndWait({ ...d, deadline }, compose.composeId, "devpod: start machine");
  } else {
    const containers = await d.api.containers(compose.appName, compose.serverId ?? null);
    if (!containers.some((c) => c.state === "running")) {
      d.log.info(`starting machine ${d.machine.machineId}`);
      await d.api.startCompose(compose.composeId);
    }
  }
  await waitForSsh(d, state, deadline);
  d.log.info(`machine ${d.machine.machineId} is running`);
}

async function waitDeployIdle(d: MachineDeps, composeId: string, deadline: number) {
  while (Date.now() < deadline) {
    const c = await d.api.composeOne(composeId);
    if (!c || c.composeStatus !== "running") return;
    await sleep(1000, d.signal);
    checkAborted(d.signal);
  }
}

async function waitForSsh(d: MachineDeps, state: MachineState, deadline: number): Promise<void> {
  await waitUntilReachable(sshTarget(d.machine, state), {
    timeoutMs: Math.max(1000, deadline - Date.now()),
    signal: d.signal,
    log: d.log,
  });
}

// ------------------------------------------------------------------------------ stop

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
    await waitDeployIdle(d, compose.composeId, Date.now() + d.config.readyTimeoutMs);
  }
  const containers = await d.api.containers(compose.appName, compose.serverId ?? null);
  // Dokploy answers [] when Docker errs, so [] after a good deploy still gets a stop;
  // a never-deployed service (stop would fail with a 500) or exited container does not.
  const running = containers.some((c) => c.state === "running");
  if (!running && (containers.length > 0 || compose.composeStatus !== "done")) {
    d.log.info(`machine ${d.machine.machineId} is already stopped`);
    return;
  }
  d.log.info(`stopping machine ${d.machine.machineId} (volumes are kept)`);
  await closeSharedConnection(d, found.state);
  await d.api.stopCompose(compose.composeId);
}

// ---------------------------------------------------------------------------- delete

export async function deleteMachine(d: MachineDeps): Promise<void> {
  const found = await locateMachine(d);
  if (found.compose) {
    const keep = d.config.keepVolumes;
    d.log.info(
      `deleting machine ${d.machine.machineId}${keep ? " (KEEP_VOLUMES: volumes are kept)" : ""}`,
    );
    await d.api.deleteCompose(found.compose.composeId, !keep);
  } else {
    d.log.info(`machine ${d.machine.machineId} is already gone from Dokploy`);
  }
  const folder = d.machine.machineFolder;
  for (
    const f of [
      STATE_FILE,
      KNOWN_HOSTS,
      CLIENT_KEY,
      `${CLIENT_KEY}.pub`,
      HOST_KEY,
      `${HOST_KEY}.pub`,
    ]
  ) {
    await removeIfExists(join(folder, f));
  }
}

// --------------------------------------------------------------------------- helpers

/** A reused SSH master must not outlive the machine it talks to. */
async function closeSharedConnection(d: MachineDeps, state: MachineState | null) {
  if (state) await closeMux(d.machine.machineFolder, sshArgv(sshTarget(d.machine, state)));
}

function render(d: MachineDeps, authorizedKey: string, sshPort: number): string {
  return renderComposeFile({
    machineId: d.machine.machineId,
    image: d.config.image,
    dockerMode: d.config.dockerMode,
    cpus: d.config.cpus,
    memoryMiB: d.config.memoryMiB,
    sshPort,
    authorizedKey,
    inactivityTimeoutSec: d.config.inactivityTimeoutSec,
    dokployNetwork: d.config.dokployNetwork,
    providerVersion: d.providerVersion,
  });
}

function describe(d: MachineDeps, sshPort: number): string {
  return describeMachine({ machineId: d.machine.machineId, sshPort }, {
    providerVersion: d.providerVersion,
    owner: owner(),
  });
}

function owner(): string {
  const user = Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? "unknown";
  let host = "unknown";
  try {
    host = Deno.hostname();
  } catch { /* no sys permission: the owner is informative only */ }
  return `${user}@${host}`.replace(/[\[\];]/g, "");
}
