/**
 * The prebuild registry of one server (issue 20): two more services in the server's image
 * cache compose (lib/cache/spec.ts), so it is found, made, agreed on, retried and removed
 * exactly as the cache is.
 *
 *   - `prebuild-store`: a plain, push-accepting registry (the cache's IMAGE_CACHE_IMAGE,
 *     without proxy mode) on an internal network only the front joins; its storage is a
 *     named volume. Its side loop logs the storage size and, once a day (and at start),
 *     removes tags pushed more than PREBUILD_KEEP_DAYS ago and garbage-collects.
 *   - `prebuild-front`: nginx, unprivileged (no capabilities, no root), the one way in,
 *     on the cache's network under `<appName>-prebuilds`. It refuses DELETE and any
 *     manifest PUT whose tag already exists: a machine can add prebuilds, never replace
 *     or remove one another machine pushed. The check runs on the server, out of reach
 *     of the machines (privileged and user-controlled, so nothing on them is trusted).
 *
 * Machines reach the front as `localhost:PREBUILD_PORT` (machine/bootstrap.sh forwards
 * it): DevPod's registry client speaks plain HTTP only to localhost.
 */
import { escapeForCompose } from "../compose/escape.ts";
import { lastLoggedSizeOf, sizeLoop } from "../compose/size_loop.ts";

export const STORE_SERVICE = "prebuild-store";
export const FRONT_SERVICE = "prebuild-front";
/** The port inside every machine: `--prebuild-repository localhost:5151/prebuilds`. */
export const PREBUILD_PORT = 5151;
/** What the user types (README, doctor). */
export const PREBUILD_REPOSITORY = `localhost:${PREBUILD_PORT}/prebuilds`;
const FRONT_PORT = 5000;
const STORE_PORT = 5000;
/** A refused write is answered by this local server block, never by the store. */
const REFUSE_PORT = 5001;
/** Tags older than this (since their push) are removed: a prebuild is rebuilt fresh weekly. */
export const PREBUILD_KEEP_DAYS = 7;
const STORAGE = "/var/lib/registry";

/** Marker token in the cache's description: its compose has the prebuild services. */
export const PREBUILD_TOKEN = "[devpod-prebuilds]";
/** compose.readLogs' `search` takes no colon. */
export const PREBUILD_SIZE_SEARCH = "devpod-prebuilds size";

export interface PrebuildSpec {
  /** The registry image (IMAGE_CACHE_IMAGE: the cache's, run as a plain registry). */
  storeImage: string;
  /** The front's nginx image (PREBUILD_PROXY_IMAGE). */
  frontImage: string;
  providerVersion: string;
}

/** The front's address on the cache's network, for a cache's appName. */
export function prebuildAddress(cacheAppName: string): string {
  return `${cacheAppName}-prebuilds:${FRONT_PORT}`;
}

/** The cache's appName back from a machine's DEVPOD_PREBUILD_REGISTRY; null when not ours. */
export function cacheOfPrebuildAddress(address: string | null | undefined): string | null {
  const m = address ? /^([a-zA-Z0-9._-]+)-prebuilds:(\d+)$/.exec(address) : null;
  return m && Number(m[2]) === FRONT_PORT ? m[1] : null;
}

const ACCEPT = [
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

/**
 * The front's nginx configuration. A manifest PUT by tag first asks the store (HEAD, as
 * a subrequest) whether the tag exists: its Docker-Content-Digest answer sends the PUT to
 * the refusing server block instead of the store. One PUT per repository and tag at a
 * time (limit_conn), so two racing first pushes cannot both pass the check. A PUT by
 * digest is content-addressed and passes; so do blob uploads (the store checks digests).
 */
export const FRONT_CONF = `daemon off;
worker_processes 1;
pid /tmp/devpod-prebuilds-nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path /tmp/nginx-body;
  proxy_temp_path /tmp/nginx-proxy;
  fastcgi_temp_path /tmp/nginx-fastcgi;
  uwsgi_temp_path /tmp/nginx-uwsgi;
  scgi_temp_path /tmp/nginx-scgi;
  client_max_body_size 0;
  # Docker's embedded DNS, asked again every 10 s: a restarted store may get a new address.
  resolver 127.0.0.11 valid=10s ipv6=off;
  proxy_http_version 1.1;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_read_timeout 900s;
  proxy_send_timeout 900s;
  proxy_set_header Host $http_host;
  proxy_set_header Connection "";
  map $tag_digest $manifest_target {
    "" ${STORE_SERVICE}:${STORE_PORT};
    default 127.0.0.1:${REFUSE_PORT};
  }
  limit_conn_zone $request_uri zone=devpod_tags:1m;
  limit_conn_status 429;
  limit_conn_log_level warn;
  server {
    listen ${FRONT_PORT};
    set $store ${STORE_SERVICE}:${STORE_PORT};
    location /v2/ {
      limit_except GET HEAD POST PUT PATCH { deny all; }
      proxy_pass http://$store$request_uri;
    }
    location ~ ^/v2/.+/manifests/[^/]+$ {
      limit_except GET HEAD PUT { deny all; }
      if ($request_method = PUT) { rewrite ^ /devpod-put-manifest last; }
      proxy_pass http://$store$request_uri;
    }
    location = /devpod-put-manifest {
      internal;
      limit_conn devpod_tags 1;
      auth_request /devpod-tag-digest;
      auth_request_set $tag_digest $upstream_http_docker_content_digest;
      proxy_pass http://$manifest_target$request_uri;
    }
    location = /devpod-tag-digest {
      internal;
      if ($request_uri ~ "/manifests/sha256:") { return 204; }
      proxy_method HEAD;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Accept "${ACCEPT}";
      proxy_intercept_errors on;
      error_page 404 = @tag-absent;
      proxy_pass http://$store$request_uri;
    }
    location @tag-absent { return 204; }
  }
  server {
    listen 127.0.0.1:${REFUSE_PORT};
    location / {
      default_type application/json;
      return 403 '{"errors":[{"code":"DENIED","message":"this prebuild tag exists: the server registry never overwrites a tag"}]}';
    }
  }
}
`;

/** Writes the configuration where the unprivileged user may, then runs nginx in front. */
const FRONT_ENTRYPOINT = `cat >/tmp/devpod-prebuilds-nginx.conf <<'DEVPOD_NGINX_CONF'
${FRONT_CONF}DEVPOD_NGINX_CONF
exec nginx -e stderr -c /tmp/devpod-prebuilds-nginx.conf
`;

/**
 * The store: the registry serves; every day (and at start) it stops for the seconds a
 * collection takes: tags pushed more than the keep days ago go (their `current/link`
 * is written once, at the push: a tag is never overwritten), then garbage-collect
 * drops what no tag holds. Pushes in that window fail and are simply not prebuilds.
 */
const STORE_ENTRYPOINT = `registry=$(command -v registry || command -v docker-registry) || {
  echo "devpod-prebuilds: no registry binary (registry or docker-registry) in the image" >&2
  exit 1
}
config=/etc/docker/registry/config.yml
tags=${STORAGE}/docker/registry/v2/repositories
keep=\${DEVPOD_PREBUILD_KEEP_DAYS:-${PREBUILD_KEEP_DAYS}}
${sizeLoop("devpod-prebuilds", STORAGE)}
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; exit 0' TERM INT
while :; do
  if [ -d "$tags" ]; then
    find "$tags" -path '*/_manifests/tags/*/current/link' -mtime +"$keep" 2>/dev/null |
      while read -r link; do
        dir=\${link%/current/link}
        repo=\${dir%/_manifests/tags/*}
        rm -rf "$dir" &&
          echo "devpod-prebuilds removed \${repo#"$tags"/}:\${dir##*/} (pushed over $keep days ago)"
      done
    "$registry" garbage-collect --delete-untagged "$config" >/tmp/devpod-gc.log 2>&1 ||
      { echo "devpod-prebuilds garbage-collect failed:"; tail -n 5 /tmp/devpod-gc.log; }
  fi
  "$registry" serve "$config" &
  pid=$!
  i=0
  while [ "$i" -lt 8640 ] && kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    sleep 10 &
    wait $!
  done
  kill "$pid" 2>/dev/null
  wait "$pid"
  pid=
done
`;

/** The two services, their volume and their internal network, for the cache's compose model. */
export function prebuildServices(spec: PrebuildSpec, cacheNetwork: string) {
  const labels = {
    "dev.devpod.prebuilds": "true",
    "dev.devpod.provider": "devpod-provider-dokploy",
    "dev.devpod.provider-version": spec.providerVersion,
  };
  return {
    services: {
      [STORE_SERVICE]: {
        image: spec.storeImage,
        entrypoint: ["/bin/sh", "-c", escapeForCompose(STORE_ENTRYPOINT), "devpod-prebuilds"],
        environment: {
          REGISTRY_HTTP_ADDR: `0.0.0.0:${STORE_PORT}`,
          REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: STORAGE,
          REGISTRY_STORAGE_DELETE_ENABLED: "true",
          DEVPOD_PREBUILD_KEEP_DAYS: String(PREBUILD_KEEP_DAYS),
        },
        volumes: [`prebuilds:${STORAGE}`],
        restart: "unless-stopped",
        labels,
        networks: ["prebuilds"],
      },
      [FRONT_SERVICE]: {
        image: spec.frontImage,
        entrypoint: ["/bin/sh", "-c", escapeForCompose(FRONT_ENTRYPOINT), "devpod-prebuilds"],
        user: "65534:65534",
        cap_drop: ["ALL"],
        security_opt: ["no-new-privileges:true"],
        depends_on: [STORE_SERVICE],
        restart: "unless-stopped",
        labels,
        networks: {
          [cacheNetwork]: { aliases: ["${APP_NAME}-prebuilds"] },
          prebuilds: {},
        },
      },
    },
    volumes: { prebuilds: {} },
    // internal: the store has no route out, and only the front reaches it.
    networks: { prebuilds: { internal: true } },
  };
}

/** The last storage size the store logged, in KiB; null when the log has none. */
export function lastPrebuildSize(log: string): number | null {
  return lastLoggedSizeOf(log, "devpod-prebuilds");
}
