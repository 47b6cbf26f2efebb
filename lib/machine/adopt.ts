/**
 * Taking up an existing machine: whose it is first (lib/identity), then, when state.json is
 * gone, rebuilding it from Dokploy and the local keys. A machine is re-adopted only by its
 * owner, and only when this folder holds the key the machine already trusts — or when the
 * owner asks for a take-over by name (DOKPLOY_TAKE_OVER). An older machine without an owner
 * is claimed by whoever proves they hold its keys.
 */
import YAML from "yaml";
import { cacheOfMirror } from "../cache/spec.ts";
import { cacheOfPrebuildAddress } from "../prebuild/spec.ts";
import type { Compose } from "../dokploy/api.ts";
import { ProviderError, StateError } from "../errors.ts";
import type { Identity } from "../identity/identity.ts";
import {
  assertMine,
  ownerOf,
  ownerRecord,
  PICK_ANOTHER,
  relationOf,
} from "../identity/ownership.ts";
import { readTextIfExists } from "../fs.ts";
import { CLIENT_KEY, ensureKeyPair, fingerprint, HOST_KEY, writeKnownHosts } from "../ssh/keys.ts";
import { renderComposeEnv, SSH_USER } from "./compose.ts";
import type { MachineDeps } from "./deps.ts";
import { resolveSshHost } from "./locate.ts";
import { type MachineMarker, parseMarker } from "./naming.ts";
import { previewsIn } from "../preview/forwarder.ts";
import { machineComposeFile, machineDescription } from "./spec.ts";
import { type MachineState, writeState } from "./state.ts";

import { TAKE_OVER_ENV } from "../context/machine.ts";

function markerOf(compose: Compose): MachineMarker {
  const marker = parseMarker(compose.description);
  if (!marker) {
    throw new StateError(`Dokploy service ${compose.composeId} carries no machine marker`);
  }
  return marker;
}

/**
 * state.json names this service: it is the caller's unless its marker says another owner's
 * (refused). A machine without an owner is claimed: this folder made it.
 */
export async function confirmOwner(
  d: MachineDeps,
  state: MachineState,
  compose: Compose,
): Promise<MachineState> {
  const me = await d.api.identity();
  const marked = { compose, marker: markerOf(compose) };
  assertMine(marked, me, "create and start", { allowUnknown: true });
  const owner = await ownerRecord(me, d.machine.machineFolder);
  const recorded = marked.marker.ownerId === me.userId && marked.marker.origin === owner.origin;
  if (recorded && state.owner?.origin === owner.origin) return state;
  state.owner = owner;
  await writeState(d.machine.machineFolder, state);
  if (!recorded) {
    // One compose.update, once: the marker now names the owner and this DevPod home.
    if (!marked.marker.ownerId) {
      d.log.info(`machine ${d.machine.machineId} had no recorded owner; now ${me.email}'s`);
    }
    await d.api.updateCompose(compose.composeId, { description: machineDescription(d, state) });
  }
  return state;
}

/** The machine service's environment in a compose file; none in a hand-edited one. */
function machineEnv(composeFile: string | null | undefined): Record<string, unknown> | undefined {
  try {
    return YAML.parse(composeFile ?? "")?.services?.machine?.environment;
  } catch {
    return undefined;
  }
}

/** The key the machine's compose file authorizes (DEVPOD_AUTHORIZED_KEY), type and body. */
export function trustedClientKey(composeFile: string | null | undefined): string | null {
  const key = machineEnv(composeFile)?.DEVPOD_AUTHORIZED_KEY;
  return typeof key === "string" ? keyBody(key) : null;
}

/** "ssh-ed25519 AAAA… comment" → "ssh-ed25519 AAAA…": the comment proves nothing. */
function keyBody(key: string): string | null {
  const [type, body] = key.trim().split(/\s+/);
  return type && body ? `${type} ${body}` : null;
}

/** This folder's client public key, never made here: a new key proves nothing. */
async function localClientKey(folder: string): Promise<string | null> {
  const text = await readTextIfExists(`${folder}/${CLIENT_KEY}.pub`).catch(() => null);
  return text ? keyBody(text) : null;
}

/**
 * Whether this folder may take up the machine without its state.json: the owner (or, for
 * a machine without one, anybody) holding the key it trusts; or its owner asking for a
 * take-over by name. Anything else is refused in one line, and nothing is changed.
 */
async function checkPossession(d: MachineDeps, compose: Compose, me: Identity): Promise<void> {
  const id = d.machine.machineId;
  const marked = { compose, marker: markerOf(compose) };
  const relation = relationOf(ownerOf(marked), me);
  if (relation === "theirs") assertMine(marked, me, "create", { fix: PICK_ANOTHER });
  const local = await localClientKey(d.machine.machineFolder);
  if (local !== null && local === trustedClientKey(compose.composeFile)) return;
  if (relation === "mine" && d.machine.takeOver) {
    d.log.warn(`${TAKE_OVER_ENV}=${id}: handing machine ${id} this folder's keys; its data stays`);
    return;
  }
  throw new ProviderError(
    relation === "mine"
      ? `machine ${id} is yours in Dokploy, but this DevPod folder does not hold the key it trusts (its state.json is gone); to give it this folder's keys, keeping its data, run DevPod again with ${TAKE_OVER_ENV}=${id} set, or pick another machine name`
      : `machine ${id} was made before owners were recorded, and this DevPod folder does not hold its keys; only their holder can claim it: pick another machine name, or ask a Dokploy owner/admin to remove it (cleanup --all-owners --yes ${id})`,
  );
}

/** state.json is gone but the service exists: rebuild it from Dokploy + local keys. */
export async function readopt(d: MachineDeps, compose: Compose): Promise<MachineState> {
  const me = await d.api.identity();
  await checkPossession(d, compose, me);
  d.log.info(`machine ${d.machine.machineId} already exists in Dokploy; adopting it`);
  const folder = d.machine.machineFolder;
  const marker = markerOf(compose);
  const clientKey = await ensureKeyPair(folder, CLIENT_KEY, `devpod-${d.machine.machineId}`);
  const hostKey = await ensureKeyPair(folder, HOST_KEY, `devpod-host-${d.machine.machineId}`);
  const sshHost = await resolveSshHost(d.api, d.config, compose.serverId ?? null);
  const state: MachineState = {
    version: 1,
    machineId: d.machine.machineId,
    composeId: compose.composeId,
    appName: compose.appName,
    projectId: compose.environment?.projectId ?? "",
    environmentId: compose.environmentId ?? "",
    serverId: compose.serverId ?? null,
    sshHost,
    sshPort: marker.sshPort,
    sshUser: SSH_USER,
    hostPublicKey: hostKey.publicKey,
    hostKeyFingerprint: await fingerprint(hostKey.publicKey),
    createdAt: compose.createdAt ?? new Date().toISOString(),
    owner: await ownerRecord(me, folder),
    ...cacheOf(compose.composeFile),
    previews: previewsIn(compose.composeFile),
  };
  // A CPU cap learnt earlier is lost with state.json; the next deploy learns it again.
  const expected = machineComposeFile(d, clientKey.publicKey, state);
  const claimed = marker.ownerId !== me.userId || marker.origin !== state.owner?.origin;
  if (!marker.ownerId) {
    d.log.info(`machine ${d.machine.machineId} had no recorded owner; now ${me.email}'s`);
  }
  if (compose.composeFile !== expected) {
    // The spec moved on, or (a take-over) our keys are new: hand the machine this folder's
    // keys; the volumes, and so the user's data, stay.
    d.log.info("re-establishing this machine's SSH keys from the local machine folder");
    await d.api.updateCompose(compose.composeId, {
      composeFile: expected,
      env: renderComposeEnv(await Deno.readTextFile(hostKey.privatePath)),
      ...(claimed ? { description: machineDescription(d, state) } : {}),
    });
  } else if (claimed) {
    await d.api.updateCompose(compose.composeId, { description: machineDescription(d, state) });
  }
  await writeState(folder, state);
  await writeKnownHosts(folder, sshHost, state.sshPort, hostKey.publicKey);
  return state;
}

/**
 * The image cache a machine's compose file mirrors through, and whether it uses the
 * cache's prebuild registry: kept when state.json is rebuilt.
 */
function cacheOf(
  composeFile: string | null | undefined,
): { imageCache?: string; prebuilds?: boolean } {
  const env = machineEnv(composeFile);
  const text = (v: unknown) => typeof v === "string" ? v : null;
  const imageCache = cacheOfMirror(text(env?.DEVPOD_REGISTRY_MIRROR));
  if (!imageCache) return {};
  const prebuilds = cacheOfPrebuildAddress(text(env?.DEVPOD_PREBUILD_REGISTRY)) === imageCache;
  return prebuilds ? { imageCache, prebuilds } : { imageCache };
}
