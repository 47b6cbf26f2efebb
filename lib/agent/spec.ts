/**
 * The server's DevPod agent cache (issue 24): one more service in the image cache's
 * compose (lib/cache/spec.ts), so it is found, made, retried and removed exactly as the
 * cache is. nginx (PREBUILD_PROXY_IMAGE) serves the agents stored in a named volume and
 * a shell loop fetches, verifies and stores each release once (machine/agent_cache.sh).
 * It sits on the cache's network under `<appName>-agents`; nothing is published.
 *
 * Machines on that network get a curl wrapper first on their sshd PATH
 * (machine/agent_curl.sh): DevPod's inject script, downloading its agent from the CLI's
 * GitHub release, gets it from the cache instead, or from GitHub when the cache cannot.
 */
import AGENT_CACHE from "../../machine/agent_cache.sh" with { type: "text" };
import AGENT_CURL from "../../machine/agent_curl.sh" with { type: "text" };
import { escapeForCompose } from "../compose/escape.ts";
import { lastLoggedSizeOf, sizeLoop } from "../compose/size_loop.ts";
import { GITHUB, parseReleasePath, servedPathPattern } from "./line.ts";

export const AGENT_SERVICE = "agent-cache";
export const AGENT_PORT = 8080;
const STORAGE = "/var/lib/devpod-agents";
/** Marker token in the cache's description: its compose has the agent cache. */
export const AGENTS_TOKEN = "[devpod-agents]";
/** compose.readLogs' `search` takes no colon. */
export const AGENT_SIZE_SEARCH = "devpod-agents size";
export const AGENT_STORED_SEARCH = "devpod-agents stored";
/** Where, on the machine, the wrapper goes: first on sshd's PATH. */
export const WRAPPER_DIR = "/usr/local/lib/devpod-dokploy/bin";
export const DEFAULT_AGENT_UPSTREAM = GITHUB;

export interface AgentCacheSpec {
  /** The nginx image (PREBUILD_PROXY_IMAGE; it needs sh, curl and sha256sum too). */
  image: string;
  /** Where releases are fetched from: GitHub or a mirror with its paths (AGENT_CACHE_UPSTREAM). */
  upstream: string;
  providerVersion: string;
}

/** The agent cache's address on the cache's network, for a cache's appName. */
export function agentCacheAddress(cacheAppName: string): string {
  return `${cacheAppName}-agents:${AGENT_PORT}`;
}

/** The service for the cache's compose model (its volume: `agents`). */
export function agentServices(spec: AgentCacheSpec, cacheNetwork: string) {
  return {
    services: {
      [AGENT_SERVICE]: {
        image: spec.image,
        entrypoint: [
          "/bin/sh",
          "-c",
          escapeForCompose(`${sizeLoop("devpod-agents", `${STORAGE}/files`)}\n${AGENT_CACHE}`),
          "devpod-agents",
        ],
        environment: {
          DEVPOD_AGENT_UPSTREAM: spec.upstream,
          DEVPOD_AGENT_STORE: STORAGE,
          DEVPOD_AGENT_PORT: String(AGENT_PORT),
          DEVPOD_AGENT_PATHS: escapeForCompose(servedPathPattern()),
        },
        volumes: [`agents:${STORAGE}`],
        // Root without root's powers: nginx needs these three to hand its workers to nobody.
        cap_drop: ["ALL"],
        cap_add: ["CHOWN", "SETGID", "SETUID"],
        security_opt: ["no-new-privileges:true"],
        restart: "unless-stopped",
        labels: {
          "dev.devpod.agent-cache": "true",
          "dev.devpod.provider": "devpod-provider-dokploy",
          "dev.devpod.provider-version": spec.providerVersion,
        },
        networks: { [cacheNetwork]: { aliases: ["${APP_NAME}-agents"] } },
      },
    },
    volumes: { agents: {} },
  };
}

/** The curl wrapper for a machine whose cache is `cacheAppName` (compose-escaped). */
export function agentCurl(cacheAppName: string): string {
  return escapeForCompose(
    AGENT_CURL.replace("@CACHE@", agentCacheAddress(cacheAppName))
      .replace("@PATHS@", servedPathPattern()),
  );
}

/** The last size the agent cache logged, in KiB; null when the log has none. */
export function lastAgentSize(log: string): number | null {
  return lastLoggedSizeOf(log, "devpod-agents");
}

/** The releases the agent cache logged storing, `<line> <version> <arch>`, oldest first. */
export function storedAgents(log: string): string[] {
  const out: string[] = [];
  for (const m of log.matchAll(/devpod-agents stored (\S+)/g)) {
    const r = parseReleasePath(m[1]);
    const name = r ? `${r.line} ${r.version} ${r.arch}` : null;
    if (name && !out.includes(name)) out.push(name);
  }
  return out;
}
