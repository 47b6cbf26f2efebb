/**
 * `preview`: publish a port of a machine's devcontainer at a URL through Dokploy's own
 * Traefik, and take it down again (issue 19).
 *
 * Adding a preview changes only the forwarder service (lib/preview/forwarder.ts) and adds
 * a Dokploy domain naming it; the deploy that applies both leaves the machine's container
 * as it is (compose recreates only a service whose definition changed), so its processes
 * and SSH sessions carry on. The password exists only in this process and on the user's
 * screen: Dokploy stores its htpasswd hash.
 */
import type { ProviderConfig } from "../config.ts";
import type { Compose, DokployApi } from "../dokploy/api.ts";
import { type Domain, DomainApi } from "../dokploy/domains.ts";
import { ConfigError, ProviderError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { deployAndWait } from "../machine/deploy.ts";
import { mapStatus } from "../machine/status.ts";
import {
  hasPreviewRelay,
  middlewareName,
  type Preview,
  PREVIEW_SERVICE,
  previewsIn,
  withPreviews,
} from "./forwarder.ts";
import { checkHost, type HostChoice, hostUnder, isPublicSslip } from "./host.ts";
import { type Credentials, generateCredentials, htpasswdLine } from "./htpasswd.ts";

/** A machine found in the project (see lib/backup/locate.ts). */
export interface PreviewMachine {
  machineId: string;
  composeId: string;
  appName: string;
  serverId: string | null;
}

/** A preview as `preview list`, `list` and `doctor` show it. */
export interface PreviewInfo {
  machineId: string;
  port: number;
  /** null when the forwarder serves the port but Dokploy has no domain for it. */
  host: string | null;
  url: string | null;
  auth: "basic" | "none";
  user: string | null;
  domainId: string | null;
  /** What is inconsistent between the forwarder and Dokploy's domains, if anything. */
  problem: string | null;
}

export interface PreviewDeps {
  api: DokployApi;
  config: ProviderConfig;
  log: Logger;
  signal?: AbortSignal;
}

export interface AddOptions {
  host?: string;
  auth: "basic" | "none";
  /** false: plain HTTP even for a public name (--no-https). */
  https?: boolean;
}

export interface Added {
  preview: PreviewInfo;
  /** Shown once; never stored. */
  credentials: Credentials | null;
}

export function parseAuth(value: unknown): "basic" | "none" {
  const v = value === undefined ? "basic" : String(value);
  if (v !== "basic" && v !== "none") {
    throw new ConfigError(`--auth "${v}" must be basic (the default) or none`);
  }
  return v;
}

export function parsePort(value: unknown): number {
  const text = String(value ?? "");
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) {
    throw new ConfigError(
      `port "${text}" is not a TCP port; give the port the app listens on, e.g. 3000`,
    );
  }
  return port;
}

export async function addPreview(
  d: PreviewDeps,
  m: PreviewMachine,
  port: number,
  opts: AddOptions,
): Promise<Added> {
  const domains = new DomainApi(d.api.client);
  const compose = await requireRunning(d.api, m, "preview");
  const current = previewsIn(compose.composeFile);
  const existing = previewInfos(m.machineId, compose).find((p) => p.port === port);
  if (current.some((p) => p.port === port) || existing) {
    throw new ProviderError(
      `port ${port} of machine ${m.machineId} is previewed already${
        existing?.url ? ` at ${existing.url}` : ""
      }; remove it first: preview rm ${m.machineId} ${port}`,
    );
  }
  const { host, https } = await chooseHost(d, domains, m, port, opts);
  const taken = (compose.domains ?? []).find((x) => x.host === host);
  if (taken) throw new ConfigError(`--host ${host} is used by this machine already`);

  const credentials = opts.auth === "basic" ? generateCredentials() : null;
  const preview: Preview = {
    port,
    auth: credentials
      ? {
        middleware: middlewareName(m.machineId, port),
        htpasswd: htpasswdLine(credentials.user, credentials.password),
      }
      : null,
  };
  const before = compose.composeFile ?? "";
  // The forwarder first: a domain naming a service the file lacks fails every deploy.
  await d.api.updateCompose(m.composeId, {
    composeFile: withPreviews(before, [...current, preview]),
  });
  let domain: Domain | null = null;
  try {
    domain = await domains.create({
      composeId: m.composeId,
      serviceName: PREVIEW_SERVICE,
      host,
      port,
      https,
      middlewares: preview.auth ? [`${preview.auth.middleware}@docker`] : [],
    });
    d.log.info(`preview ${host} → port ${port} of machine ${m.machineId}: deploying its forwarder`);
    await deploy(d, compose, `devpod: preview port ${port}`);
  } catch (err) {
    await rollBack(d, domains, m, before, domain, host);
    throw err;
  }
  const url = `${https ? "https" : "http"}://${host}`;
  return {
    preview: {
      machineId: m.machineId,
      port,
      host,
      url,
      auth: preview.auth ? "basic" : "none",
      user: credentials?.user ?? null,
      domainId: domain?.domainId ?? null,
      problem: null,
    },
    credentials,
  };
}

export async function removePreview(
  d: PreviewDeps,
  m: PreviewMachine,
  port: number,
): Promise<PreviewInfo> {
  const domains = new DomainApi(d.api.client);
  const compose = await requireRunning(d.api, m, "preview rm");
  const info = previewInfos(m.machineId, compose).find((p) => p.port === port);
  if (!info) {
    throw new ProviderError(
      `machine ${m.machineId} has no preview on port ${port} (preview list shows them)`,
    );
  }
  // Domains first: the deploy then has none naming a port the forwarder no longer serves.
  for (const row of ourDomains(compose).filter((x) => x.port === port)) {
    await domains.remove(row.domainId);
  }
  const left = previewsIn(compose.composeFile).filter((p) => p.port !== port);
  await d.api.updateCompose(m.composeId, {
    composeFile: withPreviews(compose.composeFile ?? "", left),
  });
  d.log.info(`removing the preview of port ${port} of machine ${m.machineId}`);
  await deploy(d, compose, `devpod: preview rm port ${port}`);
  return info;
}

/** Every preview of a machine: the forwarder's ports joined with Dokploy's domains. */
export function previewInfos(machineId: string, compose: Compose): PreviewInfo[] {
  const served = previewsIn(compose.composeFile);
  const rows = ourDomains(compose);
  const ports = [...new Set([...served.map((p) => p.port), ...rows.map((r) => r.port ?? 0)])]
    .filter((p) => p > 0).sort((a, b) => a - b);
  return ports.map((port) => {
    const preview = served.find((p) => p.port === port);
    const row = rows.find((r) => r.port === port);
    const auth = preview?.auth ?? null;
    let problem: string | null = null;
    if (!preview) problem = "Dokploy has a domain for it but the forwarder does not serve it";
    else if (!row) problem = "the forwarder serves it but Dokploy has no domain for it";
    else if (auth && !(row.middlewares ?? []).includes(`${auth.middleware}@docker`)) {
      problem = "its domain does not use its basic-auth middleware";
    }
    return {
      machineId,
      port,
      host: row?.host ?? null,
      url: row ? `${row.https ? "https" : "http"}://${row.host}` : null,
      auth: auth ? "basic" : "none",
      user: auth ? auth.htpasswd.split(":")[0] : null,
      domainId: row?.domainId ?? null,
      problem,
    };
  });
}

function ourDomains(compose: Compose): (Domain & { port: number })[] {
  return (compose.domains ?? [])
    .filter((x) => x.serviceName === PREVIEW_SERVICE)
    .map((x) => ({ ...x, port: x.port ?? 0 }));
}

/** The machine's row, when it runs and can have previews; else one line saying what to do. */
async function requireRunning(api: DokployApi, m: PreviewMachine, verb: string): Promise<Compose> {
  const [compose, containers] = await Promise.all([
    api.composeOne(m.composeId),
    api.containers(m.appName, m.serverId),
  ]);
  if (!compose) throw new ProviderError(`machine ${m.machineId} does not exist in Dokploy`);
  if (!hasPreviewRelay(compose.composeFile)) {
    throw new ProviderError(
      /dokploy-network/.test(compose.composeFile ?? "")
        ? `machine ${m.machineId} is on dokploy-network (DOKPLOY_NETWORK=true), where previews would expose it to every app; previews need DOKPLOY_NETWORK=false`
        : `machine ${m.machineId} was made by an older provider without previews; start it once with this version (devpod up <workspace>), then run ${verb} again`,
    );
  }
  const verdict = mapStatus(compose, containers);
  if (!("status" in verdict) || verdict.status !== "Running") {
    // A deploy would start a stopped machine, and a change left undeployed would come
    // back with the next start: previews change only on a running machine.
    throw new ProviderError(
      `machine ${m.machineId} is not running (${
        "status" in verdict ? verdict.status : "its last deploy failed"
      }); start it (devpod up <workspace>) and run ${verb} again`,
    );
  }
  return compose;
}

async function chooseHost(
  d: PreviewDeps,
  domains: DomainApi,
  m: PreviewMachine,
  port: number,
  opts: AddOptions,
): Promise<HostChoice> {
  let choice: HostChoice;
  if (opts.host) choice = { host: checkHost(opts.host), https: true };
  else if (d.config.previewDomain) {
    choice = { host: hostUnder(d.config.previewDomain, m.machineId, port), https: true };
  } else {
    const host = (await domains.generate(m.appName, m.serverId)).toLowerCase();
    choice = { host, https: isPublicSslip(host) };
  }
  return opts.https === false ? { ...choice, https: false } : choice;
}

async function deploy(d: PreviewDeps, compose: Compose, title: string): Promise<void> {
  const seen = new Set((compose.deployments ?? []).map((x) => x.deploymentId));
  await deployAndWait(
    { api: d.api, log: d.log, deadline: Date.now() + d.config.readyTimeoutMs, signal: d.signal },
    compose.composeId,
    title,
    seen,
  );
}

/** A failed add leaves what was there: the old file, no new domain (a later deploy fixes the rest). */
async function rollBack(
  d: PreviewDeps,
  domains: DomainApi,
  m: PreviewMachine,
  before: string,
  domain: Domain | null,
  host: string,
): Promise<void> {
  try {
    const rows = domain
      ? [domain]
      : (await domains.ofCompose(m.composeId)).filter((x) =>
        x.host === host && x.serviceName === PREVIEW_SERVICE
      );
    for (const row of rows) await domains.remove(row.domainId);
    await d.api.updateCompose(m.composeId, { composeFile: before });
  } catch (err) {
    d.log.warn(
      `could not undo the failed preview (${
        (err as Error).message
      }); preview list shows what is left`,
    );
  }
}
