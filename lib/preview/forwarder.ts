/**
 * The preview forwarder (issue 19): the machine's compose service that Dokploy's Traefik
 * routes preview URLs to. Dokploy puts a domain's service on `dokploy-network`, beside
 * Dokploy's Postgres and every app; the privileged machine must never be there, so the
 * domains name this small service instead. It runs the machine's image (already on the
 * server, and its perl-base runs machine/preview_relay.pl), as nobody, with no
 * capability, no Docker socket, no volume and a read-only root, and forwards only the
 * previewed ports to the machine's relay over the machine's private network.
 *
 * The previews live in this service's definition in the compose file Dokploy stores:
 * the ports in its environment, each basic-auth middleware (user and htpasswd hash) in
 * its labels. Any copy of the provider reads them back from there (previewsIn).
 */
import YAML from "yaml";
import RELAY from "../../machine/preview_relay.pl" with { type: "text" };
import { escapeForCompose } from "../compose/escape.ts";

export const PREVIEW_SERVICE = "preview";
/** The machine relay's port on the machine's private network (bootstrap: DEVPOD_PREVIEW_RELAY_PORT). */
export const RELAY_PORT = 47022;
export const FORWARDER_ROLE_LABEL = "dev.devpod.role=preview-forwarder";
/** The machine's private network, as its compose file names it (compose: `<project>_machine`). */
export const PRIVATE_NETWORK = "machine";
/**
 * How each end names the other: its compose service name in the machine's network,
 * `<service>.<network>` (Docker's DNS resolves the name in the network after the dot).
 * Every compose implementation sets the service name as an alias on each network a
 * service joins, whatever it names the containers (v2 `<project>-machine-1`, v1
 * `<project>_machine_1`). Qualified, because the forwarder is on dokploy-network too,
 * where `machine` or `preview` alone could be another project's service.
 */
export function serviceAddress(service: string, project: string): string {
  return `${service}.${project}_${PRIVATE_NETWORK}`;
}
/** The names in the compose file: compose puts in the project's name. */
export const MACHINE_ADDRESS = serviceAddress("machine", "${COMPOSE_PROJECT_NAME}");
export const FORWARDER_ADDRESS = serviceAddress(PREVIEW_SERVICE, "${COMPOSE_PROJECT_NAME}");
/** The relay script as the machine's environment carries it (compose `$` escaped). */
export const RELAY_SCRIPT = escapeForCompose(RELAY);

export interface Preview {
  port: number;
  /** Traefik basic auth; null: the URL is open to anyone who knows it. */
  auth: PreviewAuth | null;
}

export interface PreviewAuth {
  /** The middleware's name: global in Traefik, so unique per machine and preview. */
  middleware: string;
  /** `user:$apr1$…`, one htpasswd line. */
  htpasswd: string;
}

export interface ForwarderService {
  image: string;
  entrypoint: string[];
  environment: Record<string, string>;
  user: string;
  read_only: true;
  cap_drop: string[];
  security_opt: string[];
  restart: string;
  cpus: string;
  mem_limit: string;
  /** The machine's private network only; Dokploy adds dokploy-network (and default). */
  networks: string[];
  /** A list: Dokploy adds its Traefik labels only to a list (utils/docker/domain.ts). */
  labels: string[];
}

const MIDDLEWARE_LABEL = /^traefik\.http\.middlewares\.([A-Za-z0-9_-]+)\.basicauth\.users=(.*)$/;
const PORT_OF_MIDDLEWARE = /^devpod-preview-.*-(\d{1,5})-[0-9a-f]+$/;

export function forwarderService(
  opts: { image: string; machineId: string; providerVersion: string; previews: Preview[] },
): ForwarderService {
  const previews = [...opts.previews].sort((a, b) => a.port - b.port);
  return {
    image: opts.image,
    entrypoint: ["perl", "-e", RELAY_SCRIPT, "forwarder"],
    environment: {
      DEVPOD_PREVIEW_PORTS: previews.map((p) => p.port).join(" "),
      DEVPOD_PREVIEW_MACHINE: MACHINE_ADDRESS,
      DEVPOD_PREVIEW_RELAY_PORT: String(RELAY_PORT),
    },
    user: "65534:65534",
    read_only: true,
    cap_drop: ["ALL"],
    security_opt: ["no-new-privileges:true"],
    restart: "unless-stopped",
    cpus: "0.5",
    mem_limit: "64m",
    networks: [PRIVATE_NETWORK],
    labels: [
      FORWARDER_ROLE_LABEL,
      `dev.devpod.preview-of=${opts.machineId}`,
      `dev.devpod.provider-version=${opts.providerVersion}`,
      ...previews.flatMap((p) =>
        p.auth
          ? [
            `traefik.http.middlewares.${p.auth.middleware}.basicauth.users=${
              escapeForCompose(p.auth.htpasswd)
            }`,
          ]
          : []
      ),
    ],
  };
}

/** A middleware name for a new preview: ours, the machine's and the port's, and random. */
export function middlewareName(machineId: string, port: number): string {
  const safe = machineId.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 40);
  const nonce = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `devpod-preview-${safe}-${port}-${nonce}`;
}

/** The previews a compose file's forwarder serves; [] without a forwarder. */
export function previewsIn(composeFile: string | null | undefined): Preview[] {
  let svc: Record<string, unknown> | undefined;
  try {
    svc = YAML.parse(composeFile ?? "")?.services?.[PREVIEW_SERVICE];
  } catch {
    return []; // a hand-edited file: no previews of ours
  }
  if (!svc || typeof svc !== "object") return [];
  const env = (svc.environment ?? {}) as Record<string, unknown>;
  const ports = String(env.DEVPOD_PREVIEW_PORTS ?? "").split(/[\s,]+/).filter((p) =>
    /^\d{1,5}$/.test(p)
  ).map(Number);
  const auth = new Map<number, PreviewAuth>();
  for (const label of Array.isArray(svc.labels) ? svc.labels.map(String) : []) {
    const m = MIDDLEWARE_LABEL.exec(label);
    const port = m && PORT_OF_MIDDLEWARE.exec(m[1])?.[1];
    if (m && port) {
      auth.set(Number(port), { middleware: m[1], htpasswd: m[2].replaceAll("$$", "$") });
    }
  }
  return ports.map((port) => ({ port, auth: auth.get(port) ?? null }));
}

/**
 * The compose file with its forwarder serving exactly `previews` (none: no forwarder),
 * everything else as it was. Our files round-trip through the YAML library unchanged,
 * so the result is what renderComposeFile gives for the same previews (a unit test
 * holds it), and `start` sees no spec change.
 */
export function withPreviews(composeFile: string, previews: Preview[]): string {
  const doc = YAML.parse(composeFile) as {
    services: Record<string, { image?: string; labels?: Record<string, string> }>;
  };
  const machine = doc.services.machine;
  delete doc.services[PREVIEW_SERVICE];
  if (previews.length) {
    doc.services[PREVIEW_SERVICE] = forwarderService({
      image: String(machine.image),
      machineId: String(machine.labels?.["dev.devpod.machine-id"] ?? ""),
      providerVersion: String(machine.labels?.["dev.devpod.provider-version"] ?? ""),
      previews,
    }) as unknown as (typeof doc.services)[string];
  }
  return YAML.stringify(doc, { lineWidth: 0 });
}

/** Whether this compose file's machine runs the preview relay (rendered by a provider with previews). */
export function hasPreviewRelay(composeFile: string | null | undefined): boolean {
  try {
    const env = YAML.parse(composeFile ?? "")?.services?.machine?.environment;
    return Boolean(env?.DEVPOD_PREVIEW_RELAY_PORT);
  } catch {
    return false;
  }
}
