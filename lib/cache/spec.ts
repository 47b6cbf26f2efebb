/**
 * The shared image cache of one server (issue 11): a registry in pull-through mode for
 * Docker Hub, deployed as a compose service in the provider's project. Machines reach it
 * by name on a network only it and they join; it publishes no port.
 *
 * Its network and DNS name are its own Dokploy appName (unique per server and project),
 * filled in by compose from the `.env` Dokploy writes (`APP_NAME`), so the same file
 * serves every server and two projects on one server never share a cache.
 */
import YAML from "yaml";
import { escapeForCompose } from "../compose/escape.ts";
import { lastLoggedSizeOf, sizeLoop } from "../compose/size_loop.ts";
import { type AgentCacheSpec, AGENTS_TOKEN, agentServices } from "../agent/spec.ts";
import { PREBUILD_TOKEN, prebuildServices, type PrebuildSpec } from "../prebuild/spec.ts";
import { type CacheFailure, parseFailure, renderFailure } from "./failure.ts";

export const CACHE_SERVICE = "registry";
export const CACHE_PORT = 5000;
/** Dokploy service name and appName prefix (Dokploy appends "-xxxxxx"). */
export const CACHE_NAME = "devpod-image-cache";
const STORAGE = "/var/lib/registry";
/**
 * What the cache logs when its storage changes size; `doctor` and `list` read it back
 * with compose.readLogs, whose `search` takes no colon.
 */
export const SIZE_SEARCH = "devpod-image-cache size";

export interface CacheSpec {
  image: string;
  upstream: string;
  providerVersion: string;
  /** The prebuild registry beside the cache (lib/prebuild/spec.ts); absent: none. */
  prebuilds?: Omit<PrebuildSpec, "providerVersion">;
  /** The agent cache beside it (lib/agent/spec.ts); absent: none (a cache of an older provider). */
  agents?: Omit<AgentCacheSpec, "providerVersion">;
}

/**
 * The registry runs as the official image does (`registry serve <config>`, Debian's
 * package calls the binary docker-registry); a side loop reports the storage size to
 * the container log, the one place Dokploy lets us read it from.
 */
const ENTRYPOINT = `registry=$(command -v registry || command -v docker-registry) || {
  echo "devpod-image-cache: no registry binary (registry or docker-registry) in the image" >&2
  exit 1
}
${sizeLoop("devpod-image-cache", STORAGE)}
exec "$registry" serve /etc/docker/registry/config.yml
`;

export function renderCacheComposeFile(spec: CacheSpec): string {
  const prebuilds = spec.prebuilds
    ? prebuildServices({ ...spec.prebuilds, providerVersion: spec.providerVersion }, "cache")
    : null;
  const agents = spec.agents
    ? agentServices({ ...spec.agents, providerVersion: spec.providerVersion }, "cache")
    : null;
  const model = {
    services: {
      [CACHE_SERVICE]: {
        image: spec.image,
        entrypoint: ["/bin/sh", "-c", escapeForCompose(ENTRYPOINT), CACHE_NAME],
        environment: {
          REGISTRY_PROXY_REMOTEURL: spec.upstream,
          REGISTRY_HTTP_ADDR: `0.0.0.0:${CACHE_PORT}`,
          REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: STORAGE,
          // The proxy drops what it stored 7 days after fetching it (fetched again on demand).
          REGISTRY_STORAGE_DELETE_ENABLED: "true",
        },
        volumes: [`cache:${STORAGE}`],
        restart: "unless-stopped",
        labels: {
          "dev.devpod.image-cache": "true",
          "dev.devpod.provider": "devpod-provider-dokploy",
          "dev.devpod.provider-version": spec.providerVersion,
        },
        networks: { cache: { aliases: ["${APP_NAME}"] } },
      },
      ...prebuilds?.services,
      ...agents?.services,
    },
    volumes: { cache: {}, ...prebuilds?.volumes, ...agents?.volumes },
    networks: { cache: { name: "${APP_NAME}" }, ...prebuilds?.networks },
  };
  return YAML.stringify(model, { lineWidth: 0 });
}

/** The cache's compose file as this configuration wants it (made, retried or fixed with it). */
export function cacheFileFor(
  config: CacheConfig,
  providerVersion: string,
): string {
  return renderCacheComposeFile({
    image: config.imageCacheImage,
    upstream: config.imageCacheUpstream,
    providerVersion,
    ...(config.prebuilds
      ? { prebuilds: { storeImage: config.imageCacheImage, frontImage: config.prebuildProxyImage } }
      : {}),
    agents: { image: config.prebuildProxyImage, upstream: config.agentCacheUpstream },
  });
}

/** The options the server's cache compose is rendered from. */
export interface CacheConfig {
  imageCacheImage: string;
  imageCacheUpstream: string;
  /** PREBUILDS: the prebuild registry goes beside the cache. */
  prebuilds: boolean;
  prebuildProxyImage: string;
  /** AGENT_CACHE_UPSTREAM: where the agent cache fetches DevPod releases from. */
  agentCacheUpstream: string;
}

/** The address machines give their nested dockerd as its Docker Hub mirror. */
export function mirrorUrl(cacheAppName: string): string {
  return `http://${cacheAppName}:${CACHE_PORT}`;
}

/** The cache's appName back from a machine's mirror address; null when it is not ours. */
export function cacheOfMirror(url: string | null | undefined): string | null {
  const m = url ? /^http:\/\/([a-zA-Z0-9._-]+):(\d+)$/.exec(url) : null;
  return m && Number(m[2]) === CACHE_PORT ? m[1] : null;
}

/** Marker key of a server: its id, or `local` for the Dokploy host itself. */
export function serverKey(serverId: string | null): string {
  return serverId ?? "local";
}

const MARKER = /\[devpod-image-cache;server=([A-Za-z0-9._-]+)\]/;

/**
 * With `prebuilds`: its compose has the prebuild registry (a token of its own after the
 * marker, so older providers still read the marker); with `agents`: it has the agent
 * cache (lib/agent/spec.ts), a token too; with `failure`: the cache's last deploy failed
 * (see failure.ts), always last.
 */
export function describeCache(
  serverId: string | null,
  providerVersion: string,
  failure?: CacheFailure | null,
  prebuilds = false,
  agents = false,
): string {
  return `DevPod shared image cache (Docker Hub pull-through) of server ${
    serverKey(serverId)
  }, used by the dind machines there (devpod-provider-dokploy ${providerVersion}) [devpod-image-cache;server=${
    serverKey(serverId)
  }]${prebuilds ? ` ${PREBUILD_TOKEN}` : ""}${agents ? ` ${AGENTS_TOKEN}` : ""}${
    failure ? ` ${renderFailure(failure)}` : ""
  }`;
}

/**
 * The server a cache serves, from its marker, and its recorded failure; undefined when
 * the text is not a cache's.
 */
export function parseCacheMarker(
  description: string | null | undefined,
): {
  serverId: string | null;
  failure: CacheFailure | null;
  prebuilds: boolean;
  agents: boolean;
} | undefined {
  const m = description ? MARKER.exec(description) : null;
  if (!m) return undefined;
  // The token sits between the marker and a failure record (whose reason is free text).
  const between = description!.slice(m.index + m[0].length).split("[devpod-image-cache-failed")[0];
  return {
    serverId: m[1] === "local" ? null : m[1],
    failure: parseFailure(description),
    prebuilds: between.includes(PREBUILD_TOKEN),
    agents: between.includes(AGENTS_TOKEN),
  };
}

/** The last storage size the cache logged, in KiB; null when the log has none. */
export function lastLoggedSize(log: string): number | null {
  return lastLoggedSizeOf(log, "devpod-image-cache");
}
