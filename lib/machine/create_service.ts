/**
 * The machine's Dokploy service as `create` makes it on its server, before any deploy:
 * port, image cache, compose service, secret env, state.json, port race; discarded when
 * placement moves the machine, removed when the create fails.
 *
 * compose.create is the one call we never repeat blindly: Dokploy may have made the
 * service before the connection died (or before a proxy answered 5xx). After such a
 * failure we re-read the project for our marker and adopt what is there; only when
 * nothing is there do we create again, once.
 */
import { join } from "node:path";
import { type CachePlan, ensureImageCache } from "../cache/ensure.ts";
import type { Compose, CreateComposeInput } from "../dokploy/api.ts";
import { DokployError, InterruptedError } from "../errors.ts";
import { removeIfExists } from "../fs.ts";
import type { Target } from "../servers/target.ts";
import { fingerprint, type KeyPair, writeKnownHosts } from "../ssh/keys.ts";
import { renderComposeEnv, SSH_USER } from "./compose.ts";
import type { MachineDeps } from "./deps.ts";
import { sshHostFor } from "./locate.ts";
import { appNamePrefix, composeName } from "./naming.ts";
import { portClaims, type ReadClaims, settlePortRace } from "./port_race.ts";
import { chooseSshPort } from "./ports.ts";
import { type MachineProject, type ProjectSnapshot, refreshProjectSnapshot } from "./project.ts";
import { machineComposeFile, machineDescription } from "./spec.ts";
import { type MachineOwnerRecord, type MachineState, STATE_FILE, writeState } from "./state.ts";

export function checkAborted(signal: AbortSignal) {
  if (signal.aborted) throw new InterruptedError("interrupted; rolled back what this run created");
}

/** Creates the machine's service, or adopts the one a failed create left behind. */
export async function createComposeOnce(
  d: MachineDeps,
  input: CreateComposeInput,
  snapshot: ProjectSnapshot,
  ownerId: string,
): Promise<Compose> {
  try {
    return await d.api.createCompose(input);
  } catch (err) {
    if (!mayHaveCreated(err)) throw err;
    // Reads are retried through an outage, so this waits for Dokploy to come back.
    const after = await refreshProjectSnapshot(d.api, snapshot);
    // Ours only: another owner's machine of the same id is not what our create made.
    const listed = after.machines.find((m) =>
      m.marker.machineId === d.machine.machineId && m.marker.ownerId === ownerId
    );
    const made = listed && await d.api.composeOne(listed.compose.composeId);
    if (made) {
      d.log.info(`compose.create failed but Dokploy made the service; adopting it`);
      return made;
    }
    d.log.info("compose.create failed and Dokploy has no such service; creating it again");
    return await d.api.createCompose(input);
  }
}

/** A lost answer or a server error: the create may have happened. A 4xx never does. */
function mayHaveCreated(err: unknown): boolean {
  return err instanceof DokployError && (err.transport || (err.status ?? 0) >= 500);
}

export interface MadeService {
  compose: Compose;
  state: MachineState;
  cachePlan: CachePlan;
  readClaims: ReadClaims;
  /** The newest project read of this run (the port check re-reads it). */
  snapshot: () => ProjectSnapshot;
}

/**
 * The machine's service on `target`, not deployed yet: port, image cache, compose, its
 * secret env, state.json, and the port settled against parallel creates. Ports are per
 * server: two servers may publish the same one.
 */
export async function makeService(
  d: MachineDeps,
  project: MachineProject,
  target: Target,
  keys: { clientKey: KeyPair; hostKey: KeyPair },
  owner: MachineOwnerRecord,
): Promise<MadeService> {
  const serverId = target.serverId;
  let snapshot = project.snapshot;
  // Parallel creates race for ports: after ours is claimed, re-read (project.one only).
  const readClaims = async () => {
    snapshot = await refreshProjectSnapshot(d.api, snapshot);
    return portClaims(snapshot, serverId);
  };
  const sshHost = sshHostFor(d.config, target.server);
  const usedPorts = portClaims(snapshot, serverId).map((c) => c.sshPort);
  const sshPort = chooseSshPort(d.config.sshPortRange, new Set(usedPorts));
  checkAborted(d.signal);
  const cachePlan = await ensureImageCache(d, snapshot, project.environmentId, serverId);
  const imageCache = cachePlan.appName;
  const prebuilds = imageCache !== null && cachePlan.prebuilds;

  d.log.info(`creating machine ${d.machine.machineId} in project "${d.config.projectName}"`);
  const compose = await createComposeOnce(
    d,
    {
      name: composeName(d.machine.machineId),
      appName: appNamePrefix(d.machine.machineId),
      description: machineDescription(d, { sshPort, owner }),
      environmentId: project.environmentId,
      composeFile: machineComposeFile(d, keys.clientKey.publicKey, {
        sshPort,
        imageCache,
        prebuilds,
      }),
      serverId,
    },
    snapshot,
    owner.userId,
  );
  try {
    // compose.create takes no env (dokploy-openapi.json): the secret needs this update.
    await d.api.updateCompose(compose.composeId, {
      env: renderComposeEnv(await Deno.readTextFile(keys.hostKey.privatePath)),
    });
    const state: MachineState = {
      version: 1,
      machineId: d.machine.machineId,
      composeId: compose.composeId,
      appName: compose.appName,
      projectId: project.projectId,
      environmentId: project.environmentId,
      serverId,
      sshHost,
      sshPort,
      sshUser: SSH_USER,
      hostPublicKey: keys.hostKey.publicKey,
      hostKeyFingerprint: await fingerprint(keys.hostKey.publicKey),
      createdAt: new Date().toISOString(),
      owner,
      ...(imageCache ? { imageCache } : {}),
      ...(prebuilds ? { prebuilds } : {}),
    };
    // Written before the deploy: a killed run leaves state the next run adopts.
    const folder = d.machine.machineFolder;
    await writeState(folder, state);
    await writeKnownHosts(folder, sshHost, sshPort, keys.hostKey.publicKey);
    await settlePortRace(d, compose, state, keys.clientKey.publicKey, readClaims);
    return { compose, state, cachePlan, readClaims, snapshot: () => snapshot };
  } catch (err) {
    await rollbackCreate(d, compose.composeId);
    throw err;
  }
}

/** A service made on the wrong server, never deployed: it goes, with a cache made for it. */
export async function discardService(d: MachineDeps, made: MadeService): Promise<void> {
  await d.api.deleteCompose(made.compose.composeId, true);
  if (made.cachePlan.made) {
    await d.api.deleteCompose(made.cachePlan.made.composeId, true).catch(() => {});
  }
  await removeIfExists(join(d.machine.machineFolder, STATE_FILE));
}

export async function rollbackCreate(d: MachineDeps, composeId: string): Promise<void> {
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
