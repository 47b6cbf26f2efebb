/**
 * The machine as a docker-compose file (design §3): a typed model rendered with a
 * YAML library. Secrets (the host private key) are not in the body: they go into
 * the compose `env`, which Dokploy encrypts at rest and turns into `.env`.
 */
import YAML from "yaml";
import BOOTSTRAP from "../../machine/bootstrap.sh" with { type: "text" };
import {
  CONTROL_VOLUME,
  GUARD_SERVICE,
  type GuardService,
  guardService,
  MACHINE_CONTROL_DIR,
  SNAPSHOT_VOLUME,
} from "../backup/guard.ts";
import { agentCurl } from "../agent/spec.ts";
import { mirrorUrl } from "../cache/spec.ts";
import { PREBUILD_PORT, prebuildAddress } from "../prebuild/spec.ts";
import { escapeForCompose } from "../compose/escape.ts";
import type { DockerMode } from "../config.ts";
import {
  FORWARDER_ADDRESS,
  type ForwarderService,
  forwarderService,
  type Preview,
  PREVIEW_SERVICE,
  PRIVATE_NETWORK,
  RELAY_PORT,
  RELAY_SCRIPT,
} from "../preview/forwarder.ts";

export const SERVICE = "machine";
export const SSH_USER = "devpod";
export const HOME_DIR = "/home/devpod";

export interface MachineSpec {
  machineId: string;
  image: string;
  dockerMode: DockerMode;
  cpus: number;
  memoryMiB: number;
  sshPort: number;
  authorizedKey: string;
  inactivityTimeoutSec: number;
  dokployNetwork: boolean;
  /** SSH sessions get DEVPOD_DISABLE_TELEMETRY=true (see ProviderConfig). */
  disableAgentTelemetry: boolean;
  /** The appName of the server's image cache this machine's dockerd mirrors through. */
  imageCache: string | null;
  /** That cache has a prebuild registry: localhost:5151 forwards to it (lib/prebuild). */
  prebuilds?: boolean;
  /** BACKUP_DESTINATION is set: the backup guard and its volumes (lib/backup/guard.ts). */
  backups?: boolean;
  /** Preview URLs its forwarder serves (lib/preview); read back from Dokploy's copy. */
  previews?: Preview[];
  providerVersion: string;
}

/** The compose model we render; only the keys we use. */
export interface ComposeModel {
  services: {
    [SERVICE]: MachineService;
    [GUARD_SERVICE]?: GuardService;
    [PREVIEW_SERVICE]?: ForwarderService;
  };
  volumes: Record<string, Record<string, never>>;
  networks: Record<string, { external?: boolean }>;
}

interface MachineService {
  image: string;
  entrypoint: string[];
  hostname: string;
  environment: Record<string, string>;
  ports: string[];
  volumes: string[];
  privileged?: boolean;
  restart: string;
  cpus: string;
  mem_limit: string;
  stop_grace_period: string;
  labels: Record<string, string>;
  networks: string[];
}

export function composeModel(spec: MachineSpec): ComposeModel {
  const dind = spec.dockerMode === "dind";
  const network = spec.dokployNetwork ? "dokploy-network" : PRIVATE_NETWORK;
  const networks: ComposeModel["networks"] = spec.dokployNetwork
    ? { "dokploy-network": { external: true } }
    : { [PRIVATE_NETWORK]: {} };
  // The cache's network is its own (made by its deploy): joined, never created here.
  const cache = dind ? spec.imageCache : null;
  if (cache) networks[cache] = { external: true };
  const prebuilds: Record<string, string> = cache && spec.prebuilds
    ? { DEVPOD_PREBUILD_REGISTRY: prebuildAddress(cache), DEVPOD_PREBUILD_PORT: `${PREBUILD_PORT}` }
    : {};
  const volumes = [`home:${HOME_DIR}`];
  if (dind) volumes.push("docker:/var/lib/docker");
  const namedVolumes: ComposeModel["volumes"] = dind ? { home: {}, docker: {} } : { home: {} };
  const guard: { [GUARD_SERVICE]?: GuardService } = {};
  if (spec.backups) {
    volumes.push(`${CONTROL_VOLUME}:${MACHINE_CONTROL_DIR}`);
    namedVolumes[SNAPSHOT_VOLUME] = {};
    namedVolumes[CONTROL_VOLUME] = {};
    guard[GUARD_SERVICE] = guardService({
      image: spec.image,
      machineId: spec.machineId,
      homeDir: HOME_DIR,
      providerVersion: spec.providerVersion,
    });
  }
  // Previews reach the machine through its relay on its private network; a machine on
  // dokploy-network (DOKPLOY_NETWORK) gets neither, or every app there could reach it.
  const relay = !spec.dokployNetwork;
  const forwarder: { [PREVIEW_SERVICE]?: ForwarderService } = {};
  if (relay && spec.previews?.length) {
    forwarder[PREVIEW_SERVICE] = forwarderService({
      image: spec.image,
      machineId: spec.machineId,
      providerVersion: spec.providerVersion,
      previews: spec.previews,
    });
  }
  return {
    services: {
      [SERVICE]: {
        image: spec.image,
        // The bootstrap travels in the file itself: the machine fetches none of our code.
        entrypoint: ["/bin/sh", "-c", escapeForCompose(BOOTSTRAP), "devpod-bootstrap"],
        hostname: `devpod-${spec.machineId}`.slice(0, 63).toLowerCase(),
        environment: {
          DEVPOD_HOST_KEY_B64: "${DEVPOD_HOST_KEY_B64}",
          DEVPOD_AUTHORIZED_KEY: spec.authorizedKey,
          DEVPOD_INACTIVITY_TIMEOUT: String(spec.inactivityTimeoutSec),
          DEVPOD_DOCKER_MODE: spec.dockerMode,
          // Only when on, so existing machines' compose files (and deploys) stay as they are.
          ...(spec.disableAgentTelemetry ? { DEVPOD_DISABLE_TELEMETRY: "true" } : {}),
          ...(cache ? { DEVPOD_REGISTRY_MIRROR: mirrorUrl(cache) } : {}),
          // DevPod's agent from the cache's agent service (lib/agent/spec.ts).
          ...(cache ? { DEVPOD_AGENT_CURL: agentCurl(cache) } : {}),
          ...prebuilds,
          ...(spec.backups ? { DEVPOD_BACKUP_CTL: MACHINE_CONTROL_DIR } : {}),
          ...(relay
            ? {
              DEVPOD_PREVIEW_RELAY_PORT: String(RELAY_PORT),
              DEVPOD_PREVIEW_FORWARDER: FORWARDER_ADDRESS,
              DEVPOD_PREVIEW_RELAY: RELAY_SCRIPT,
            }
            : {}),
        },
        ports: [`${spec.sshPort}:22`],
        volumes,
        ...(dind ? { privileged: true } : {}),
        // An idle stop exits 0 and stays stopped; a crash comes back.
        restart: "on-failure",
        cpus: String(spec.cpus),
        mem_limit: `${spec.memoryMiB}m`,
        stop_grace_period: "30s",
        labels: {
          "dev.devpod.machine-id": spec.machineId,
          "dev.devpod.provider": "devpod-provider-dokploy",
          "dev.devpod.provider-version": spec.providerVersion,
        },
        networks: cache ? [network, cache] : [network],
      },
      ...guard,
      ...forwarder,
    },
    volumes: namedVolumes,
    networks,
  };
}

export function renderComposeFile(spec: MachineSpec): string {
  return YAML.stringify(composeModel(spec), { lineWidth: 0 });
}

/** The compose `env` (dotenv text): one line per secret, base64 so it stays one line. */
export function renderComposeEnv(hostPrivateKey: string): string {
  return `DEVPOD_HOST_KEY_B64=${btoa(hostPrivateKey)}\n`;
}
