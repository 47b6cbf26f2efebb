/** Re-adopting a machine whose state.json is gone: rebuilt from Dokploy + local keys. */
import YAML from "yaml";
import { cacheOfMirror } from "../cache/spec.ts";
import { cacheOfPrebuildAddress } from "../prebuild/spec.ts";
import type { Compose } from "../dokploy/api.ts";
import { StateError } from "../errors.ts";
import { CLIENT_KEY, ensureKeyPair, fingerprint, HOST_KEY, writeKnownHosts } from "../ssh/keys.ts";
import { renderComposeEnv, SSH_USER } from "./compose.ts";
import type { MachineDeps } from "./deps.ts";
import { resolveSshHost } from "./locate.ts";
import { parseMarker } from "./naming.ts";
import { previewsIn } from "../preview/forwarder.ts";
import { machineComposeFile } from "./spec.ts";
import { type MachineState, writeState } from "./state.ts";

/** state.json is gone but the service exists: rebuild it from Dokploy + local keys. */
export async function readopt(d: MachineDeps, compose: Compose): Promise<MachineState> {
  const folder = d.machine.machineFolder;
  const marker = parseMarker(compose.description);
  if (!marker) {
    throw new StateError(`Dokploy service ${compose.composeId} carries no machine marker`);
  }
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
    ...cacheOf(compose.composeFile),
    previews: previewsIn(compose.composeFile),
  };
  // A CPU cap learnt earlier is lost with state.json; the next deploy learns it again.
  const expected = machineComposeFile(d, clientKey.publicKey, state);
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

/**
 * The image cache a machine's compose file mirrors through, and whether it uses the
 * cache's prebuild registry: kept when state.json is rebuilt.
 */
function cacheOf(
  composeFile: string | null | undefined,
): { imageCache?: string; prebuilds?: boolean } {
  let env: Record<string, unknown> | undefined;
  try {
    env = YAML.parse(composeFile ?? "")?.services?.machine?.environment;
  } catch { /* a hand-edited file: no cache */ }
  const text = (v: unknown) => typeof v === "string" ? v : null;
  const imageCache = cacheOfMirror(text(env?.DEVPOD_REGISTRY_MIRROR));
  if (!imageCache) return {};
  const prebuilds = cacheOfPrebuildAddress(text(env?.DEVPOD_PREBUILD_REGISTRY)) === imageCache;
  return prebuilds ? { imageCache, prebuilds } : { imageCache };
}
