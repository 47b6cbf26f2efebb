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
const SIZE_LINE = /devpod-image-cache size (\d+) KiB/g;

export interface CacheSpec {
  image: string;
  upstream: string;
  providerVersion: string;
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
(
  last=
  while :; do
    size=$(du -sk ${STORAGE} 2>/dev/null | cut -f1)
    if [ -n "$size" ] && [ "$size" != "$last" ]; then
      echo "devpod-image-cache size $size KiB"
      last=$size
    fi
    sleep 10
  done
) &
exec "$registry" serve /etc/docker/registry/config.yml
`;

export function renderCacheComposeFile(spec: CacheSpec): string {
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
    },
    volumes: { cache: {} },
    networks: { cache: { name: "${APP_NAME}" } },
  };
  return YAML.stringify(model, { lineWidth: 0 });
}

/** The cache's compose file as this configuration wants it (made, retried or fixed with it). */
export function cacheFileFor(
  config: { imageCacheImage: string; imageCacheUpstream: string },
  providerVersion: string,
): string {
  return renderCacheComposeFile({
    image: config.imageCacheImage,
    upstream: config.imageCacheUpstream,
    providerVersion,
  });
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

/** With `failure`: the cache's last deploy failed (see failure.ts). */
export function describeCache(
  serverId: string | null,
  providerVersion: string,
  failure?: CacheFailure | null,
): string {
  return `DevPod shared image cache (Docker Hub pull-through) of server ${
    serverKey(serverId)
  }, used by the dind machines there (devpod-provider-dokploy ${providerVersion}) [devpod-image-cache;server=${
    serverKey(serverId)
  }]${failure ? ` ${renderFailure(failure)}` : ""}`;
}

/**
 * The server a cache serves, from its marker, and its recorded failure; undefined when
 * the text is not a cache's.
 */
export function parseCacheMarker(
  description: string | null | undefined,
): { serverId: string | null; failure: CacheFailure | null } | undefined {
  const m = description ? MARKER.exec(description) : null;
  if (!m) return undefined;
  return { serverId: m[1] === "local" ? null : m[1], failure: parseFailure(description) };
}

/** The last storage size the cache logged, in KiB; null when the log has none. */
export function lastLoggedSize(log: string): number | null {
  let size: number | null = null;
  for (const m of log.matchAll(SIZE_LINE)) size = Number(m[1]);
  return size;
}
