/**
 * domain.* for compose services, as Dokploy v0.30.2 does it (dokploy-api.md §9 "domain";
 * services/domain.ts, utils/docker/domain.ts): `create` only stores a row; the next deploy
 * parses the stored compose file, adds each enabled domain's Traefik labels to the
 * service it names, puts that service on dokploy-network (and default), declares
 * dokploy-network external and deploys the re-serialised file. A domain whose service the
 * file lacks fails the whole deploy.
 */
import YAML from "yaml";
import type { Ctx, Input, Procedures } from "../context.ts";
import { notFound } from "../errors.ts";
import type { ComposeRow, DomainRow } from "../store.ts";
import { newId, now } from "../store.ts";
import { findCompose } from "./compose.ts";

function findDomain(ctx: Ctx, domainId: unknown): DomainRow {
  const d = ctx.store.domains.get(String(domainId));
  if (!d) throw notFound("Domain");
  return d;
}

/** The columns domain.create and domain.update take, with the table's defaults. */
function domainFields(
  input: Input,
  base?: DomainRow,
): Omit<DomainRow, "domainId" | "createdAt" | "uniqueConfigKey"> {
  const pick = <T>(key: string, fallback: T): T =>
    key in input ? input[key] as T : base ? (base as unknown as Record<string, T>)[key] : fallback;
  return {
    host: String(input.host),
    path: pick<string | null>("path", "/"),
    port: pick<number | null>("port", 3000),
    https: pick<boolean>("https", false),
    certificateType: pick<string>("certificateType", "none"),
    customCertResolver: pick<string | null>("customCertResolver", null),
    customEntrypoint: pick<string | null>("customEntrypoint", null),
    composeId: base ? base.composeId : (input.composeId as string | null | undefined) ?? null,
    applicationId: base
      ? base.applicationId
      : (input.applicationId as string | null | undefined) ?? null,
    serviceName: pick<string | null>("serviceName", null),
    domainType: pick<string | null>("domainType", "application"),
    internalPath: pick<string | null>("internalPath", "/"),
    stripPath: pick<boolean>("stripPath", false),
    middlewares: pick<string[] | null>("middlewares", []),
    enabled: pick<boolean>("enabled", true),
    previewDeploymentId: null,
  };
}

export const domainProcedures: Procedures = {
  "domain.create": (ctx, input: Input) => {
    if (input.composeId) findCompose(ctx, input.composeId);
    const row: DomainRow = {
      domainId: newId(),
      createdAt: now(),
      uniqueConfigKey: ctx.store.nextDomainKey++,
      ...domainFields(input),
    };
    ctx.store.domains.set(row.domainId, row);
    return row;
  },
  "domain.update": (ctx, input: Input) => {
    const row = findDomain(ctx, input.domainId);
    Object.assign(row, domainFields(input, row));
    return row;
  },
  "domain.one": (ctx, input: Input) => findDomain(ctx, input.domainId),
  "domain.byComposeId": (ctx, input: Input) => {
    findCompose(ctx, input.composeId);
    return ctx.store.domainsOf(String(input.composeId));
  },
  "domain.delete": (ctx, input: Input) => {
    const row = findDomain(ctx, input.domainId);
    ctx.store.domains.delete(row.domainId);
    return row;
  },
  "domain.toggleEnable": (ctx, input: Input) => {
    const row = findDomain(ctx, input.domainId);
    row.enabled = !row.enabled;
    return row;
  },
  // generateRandomDomain: the appName cut to 40, 3 random bytes, the server's IP dashed.
  "domain.generateDomain": (ctx, input: Input) => {
    const ip = input.serverId
      ? ctx.store.servers.get(String(input.serverId))?.ipAddress ?? ""
      : ctx.store.dokployHostIp;
    const hash = Array.from(
      crypto.getRandomValues(new Uint8Array(3)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const slugIp = ip.replaceAll(".", "-").replaceAll(":", "-");
    return `${String(input.appName).slice(0, 40)}-${hash}${slugIp ? `-${slugIp}` : ""}.sslip.io`;
  },
};

type Service = { labels?: unknown; networks?: unknown };

/**
 * The file a deploy writes and runs for this compose: the stored one byte for byte when
 * it has no domains, else re-serialised with the domains' labels and networks. Throws
 * (failing the deploy) when a domain names no service of the file.
 */
export function deployedComposeFile(compose: ComposeRow, domains: DomainRow[]): string {
  const active = domains.filter((d) => d.enabled !== false);
  if (!active.length) return compose.composeFile;
  const doc = YAML.parse(compose.composeFile, { maxAliasCount: 10000 }) as {
    services?: Record<string, Service>;
    networks?: Record<string, unknown>;
  };
  for (const domain of active) {
    const { serviceName } = domain;
    if (!serviceName) throw new Error(`Domain "${domain.host}" is missing a service name`);
    const service = doc?.services?.[serviceName];
    if (!service) {
      throw new Error(
        `Domain "${domain.host}" is attached to service "${serviceName}" which does not exist in the compose`,
      );
    }
    const labels = domainLabels(compose.appName, domain, domain.customEntrypoint || "web");
    if (!domain.customEntrypoint && domain.https) {
      labels.push(...domainLabels(compose.appName, domain, "websecure"));
    }
    service.labels ??= [];
    // Only a label list gets them: Dokploy skips a map of labels without a word.
    if (Array.isArray(service.labels)) {
      if (!service.labels.includes("traefik.enable=true")) {
        service.labels.unshift("traefik.enable=true");
      }
      service.labels.unshift(...labels);
      if (!service.labels.includes("traefik.docker.network=dokploy-network")) {
        service.labels.unshift("traefik.docker.network=dokploy-network");
      }
    }
    service.networks = withNetwork(service.networks);
  }
  const used = Object.values(doc.services ?? {}).some((s) => {
    const nets = s?.networks;
    return Array.isArray(nets)
      ? nets.includes("dokploy-network")
      : !!nets && typeof nets === "object" && "dokploy-network" in nets;
  });
  if (used) doc.networks = { ...(doc.networks ?? {}), "dokploy-network": { external: true } };
  return YAML.stringify(doc, { lineWidth: 1000 });
}

function withNetwork(networks: unknown): unknown {
  const nets = networks ?? [];
  if (Array.isArray(nets)) {
    for (const n of ["dokploy-network", "default"]) if (!nets.includes(n)) nets.push(n);
    return nets;
  }
  if (typeof nets === "object") {
    const map = nets as Record<string, unknown>;
    for (const n of ["dokploy-network", "default"]) if (!(n in map)) map[n] = {};
  }
  return nets;
}

/** createDomainLabels: one router per entrypoint, `<appName>-<uniqueConfigKey>-<entrypoint>`. */
export function domainLabels(appName: string, domain: DomainRow, entrypoint: string): string[] {
  const { host, port, path, https, customEntrypoint, uniqueConfigKey } = domain;
  const router = `${appName}-${uniqueConfigKey}-${entrypoint}`;
  const labels = [
    `traefik.http.routers.${router}.rule=Host(\`${host}\`)${
      path && path !== "/" ? ` && PathPrefix(\`${path}\`)` : ""
    }`,
    `traefik.http.routers.${router}.entrypoints=${entrypoint}`,
    `traefik.http.services.${router}.loadbalancer.server.port=${port}`,
    `traefik.http.routers.${router}.service=${router}`,
  ];
  const middlewares: string[] = [];
  const redirectOnly = entrypoint === "web" && https && !customEntrypoint;
  if (redirectOnly) middlewares.push("redirect-to-https@file");
  if (domain.stripPath && path && path !== "/") {
    const name = `stripprefix-${appName}-${uniqueConfigKey}`;
    if (entrypoint === "web" || customEntrypoint) {
      labels.push(`traefik.http.middlewares.${name}.stripprefix.prefixes=${path}`);
    }
    if (!redirectOnly) middlewares.push(name);
  }
  const internal = domain.internalPath;
  if (internal && internal !== "/" && internal.startsWith("/")) {
    const name = `addprefix-${appName}-${uniqueConfigKey}`;
    if (entrypoint === "web" || customEntrypoint) {
      labels.push(`traefik.http.middlewares.${name}.addprefix.prefix=${internal}`);
    }
    if (!redirectOnly) middlewares.push(name);
  }
  if (!redirectOnly && domain.middlewares?.length) middlewares.push(...domain.middlewares);
  if (middlewares.length) {
    labels.push(`traefik.http.routers.${router}.middlewares=${middlewares.join(",")}`);
  }
  if (entrypoint === "websecure" || (customEntrypoint && https)) {
    if (domain.certificateType === "letsencrypt") {
      labels.push(`traefik.http.routers.${router}.tls.certresolver=letsencrypt`);
    } else if (domain.certificateType === "custom" && domain.customCertResolver) {
      labels.push(`traefik.http.routers.${router}.tls.certresolver=${domain.customCertResolver}`);
    } else if (domain.certificateType === "none" && https) {
      labels.push(`traefik.http.routers.${router}.tls=true`);
    }
  }
  return labels;
}
