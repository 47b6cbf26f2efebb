/**
 * Options from the environment, as DevPod passes them (devpod-protocol.md §3.4), read
 * once into one typed, validated object. The rest of the code never touches env vars.
 */
import { z } from "zod";
import { cronProblem, NIGHTLY } from "./backup/schedule.ts";
import { ConfigError } from "./errors.ts";
import { projectNameProblem } from "./identity/project_name.ts";
import { cliDebug, cliTelemetryDisabled } from "./context/cli_env.ts";
import type { Env } from "./context/machine.ts";
export { type Env, loadMachineContext, type MachineContext } from "./context/machine.ts";
import { MACHINE_TYPES, type MachineType, OPTIONS, type OptionSpec } from "./options.ts";

export type DockerMode = "dind" | "none";

/** DOKPLOY_SERVER_ID: where creates put machines (lib/servers). */
export type ServerChoice =
  | { kind: "local" }
  | { kind: "auto" }
  /** A remote server's id or name, resolved through server.all. */
  | { kind: "named"; ref: string };

export interface BackupConfig {
  /** A Dokploy destination's name or id, resolved through destination.all. */
  destination: string;
  /** BACKUP_SCHEDULE as given: a cron expression or `nightly` (see lib/backup/schedule.ts). */
  schedule: string;
  keep: number;
}

export interface PortRange {
  from: number;
  to: number;
}

export interface ProviderConfig {
  /** Normalised: scheme + host (+ path), no trailing slash. */
  serverUrl: string;
  token: string;
  projectName: string;
  /** Where creates put machines; other verbs use the machine's own server (state.json). */
  server: ServerChoice;
  machineType: MachineType;
  cpus: number;
  memoryMiB: number;
  image: string;
  dockerMode: DockerMode;
  inactivityTimeoutSec: number;
  keepVolumes: boolean;
  sshHost: string | null;
  sshPortRange: PortRange;
  dokployNetwork: boolean;
  /** IMAGE_CACHE: a shared pull-through cache per server, used by dind machines. */
  imageCache: boolean;
  imageCacheImage: string;
  /** Normalised: no trailing slash. */
  imageCacheUpstream: string;
  /** PREBUILDS: a prebuild registry per server beside the image cache (lib/prebuild). */
  prebuilds: boolean;
  prebuildProxyImage: string;
  /** AGENT_CACHE_UPSTREAM, normalised (no trailing slash): where the agent cache fetches releases. */
  agentCacheUpstream: string;
  /** BACKUP_*: scheduled backups of the home volume through Dokploy (lib/backup); null: off. */
  backup: BackupConfig | null;
  /** PREVIEW_DOMAIN without its `*.`: preview hosts are `<machine>-<port>.<this>`; null: generated. */
  previewDomain: string | null;
  sshReuseConnections: boolean;
  agentPath: string;
  agentUrl: string | null;
  /**
   * Whether SSH sessions on the machine get DEVPOD_/DEVSY_DISABLE_TELEMETRY=true: the
   * user's CLI runs with it (DevPod hands providers its own environment, but not its
   * TELEMETRY context option), or AGENT_URL is set — our sign of a machine without
   * internet, where every agent call would wait ~3 s for telemetry to time out.
   */
  disableAgentTelemetry: boolean;
  readyTimeoutMs: number;
  /** How long a call safe to repeat rides out a Dokploy outage (DOKPLOY_RETRY_WINDOW). */
  retryWindowMs: number;
  debug: boolean;
}

const GO_DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration (`30m`, `1h30m`, `90s`, `0`) into milliseconds; null if malformed. */
export function parseGoDuration(text: string): number | null {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return null;
    total += Number(m[1]) * GO_DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  return pos > 0 ? total : null;
}

function fixHint(name: string): string {
  return `set it with: devpod provider set-options <provider> -o ${name}=...`;
}

function optionValue(env: Env, spec: OptionSpec): string {
  const raw = env[spec.name];
  return (raw === undefined || raw.trim() === "" ? spec.default ?? "" : raw).trim();
}

/** Each option as a zod schema over its (defaulted) string value; messages name the fix. */
const parsers = {
  DOKPLOY_SERVER_URL: z.string().min(1, "is required").transform((v, ctx) => {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" is not a URL; use e.g. https://dokploy.example.com`,
      });
      return z.NEVER;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: `"${v}" must start with http:// or https://` });
      return z.NEVER;
    }
    if (url.search || url.hash || url.username || url.password) {
      ctx.addIssue({
        code: "custom",
        message: "must not carry credentials, a query or a fragment",
      });
      return z.NEVER;
    }
    // Users paste the dashboard URL or one ending in /api; both mean the base.
    const path = url.pathname.replace(/\/+$/, "").replace(/\/api$/, "");
    return `${url.origin}${path}`;
  }),
  DOKPLOY_API_TOKEN: z.string().min(
    1,
    "is required (create one in Dokploy: Settings > Profile > API/CLI)",
  )
    .refine((v) => !/\s/.test(v), "contains white space; paste the key alone"),
  DOKPLOY_PROJECT_NAME: z.string().min(1, "must not be empty").max(
    100,
    "is longer than 100 characters",
  ).superRefine((v, ctx) => {
    const problem = projectNameProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }),
  DOKPLOY_SERVER_ID: z.string().max(100).regex(
    /^$|^[\w][\w .@:-]*$/,
    "must be a server id or name, local or auto",
  ).transform((v): ServerChoice => {
    const lower = v.toLowerCase();
    if (v === "" || lower === "local") return { kind: "local" };
    if (lower === "auto") return { kind: "auto" };
    return { kind: "named", ref: v };
  }),
  MACHINE_TYPE: z.enum(Object.keys(MACHINE_TYPES) as [MachineType, ...MachineType[]], {
    error: () => `must be one of ${Object.keys(MACHINE_TYPES).join(", ")}`,
  }),
  MACHINE_CPUS: z.string().transform((v, ctx) => {
    if (v === "") return null;
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0) || n > 256) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" must be a number of CPUs between 0.1 and 256`,
      });
      return z.NEVER;
    }
    return n;
  }),
  MACHINE_MEMORY: z.string().transform((v, ctx) => {
    if (v === "") return null;
    const m = /^(\d+)([mMgG])$/.exec(v);
    const mib = m ? Number(m[1]) * (m[2].toLowerCase() === "g" ? 1024 : 1) : NaN;
    if (!m || mib < 256 || mib > 1024 * 1024) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" must be a size between 256m and 1024g, e.g. 6g`,
      });
      return z.NEVER;
    }
    return mib;
  }),
  MACHINE_IMAGE: imageSchema(),
  IMAGE_CACHE: booleanSchema(),
  IMAGE_CACHE_IMAGE: imageSchema(),
  PREBUILDS: booleanSchema(),
  PREBUILD_PROXY_IMAGE: imageSchema(),
  IMAGE_CACHE_UPSTREAM: upstreamSchema(
    false,
    "a registry URL such as https://registry-1.docker.io (no path)",
  ),
  AGENT_CACHE_UPSTREAM: upstreamSchema(
    true,
    "an http(s) URL such as https://github.com (no query, no credentials)",
  ),
  DOCKER_MODE: z.enum(["dind", "none"], { error: () => "must be dind or none" }),
  INACTIVITY_TIMEOUT: durationSchema({ maxMs: 30 * 86_400_000 }),
  KEEP_VOLUMES: booleanSchema(),
  SSH_HOST: z.string().regex(/^$|^[a-zA-Z0-9.:\[\]-]+$/, "must be a host name or IP address")
    .transform((v) => v === "" ? null : v),
  SSH_PORT_RANGE: z.string().transform((v, ctx) => {
    const m = /^(\d{1,5})-(\d{1,5})$/.exec(v);
    const from = m ? Number(m[1]) : NaN;
    const to = m ? Number(m[2]) : NaN;
    if (!m || from < 1024 || to > 65535 || from > to) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" must be FROM-TO with 1024 <= FROM <= TO <= 65535, e.g. 32200-32999`,
      });
      return z.NEVER;
    }
    return { from, to };
  }),
  SSH_REUSE_CONNECTIONS: booleanSchema(),
  DOKPLOY_NETWORK: booleanSchema(),
  AGENT_PATH: z.string().regex(/^\/[^\s'"]+$/, "must be an absolute path without spaces or quotes"),
  AGENT_URL: z.string().transform((v, ctx) => {
    if (v === "") return null;
    const problem = agentUrlProblem(v);
    if (problem) {
      ctx.addIssue({ code: "custom", message: `"${v}" ${problem}` });
      return z.NEVER;
    }
    return v.replace(/\/+$/, "");
  }),
  BACKUP_DESTINATION: z.string().max(100).regex(
    /^[^\s'"`$]*(?: [^\s'"`$]+)*$/,
    "must be a Dokploy destination's name or id",
  ),
  BACKUP_SCHEDULE: z.string().refine(
    (v) => cronProblem(v) === null || v.toLowerCase() === NIGHTLY,
    {
      error: (issue) => cronProblem(String(issue.input)) ?? "is not a cron expression",
    },
  ),
  BACKUP_KEEP: z.string().transform((v, ctx) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 1000) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" must be a number of backups from 1 to 1000`,
      });
      return z.NEVER;
    }
    return n;
  }),
  PREVIEW_DOMAIN: z.string().transform((v, ctx) => {
    const domain = v.replace(/^\*\./, "").replace(/\.$/, "").toLowerCase();
    if (v === "") return null;
    if (!isHostName(domain) || !domain.includes(".")) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" must be a wildcard domain such as *.dev.example.com`,
      });
      return z.NEVER;
    }
    return domain;
  }),
  READY_TIMEOUT: durationSchema({ minMs: 5_000, maxMs: 86_400_000 }),
  DOKPLOY_RETRY_WINDOW: durationSchema({ maxMs: 3_600_000 }),
} satisfies Record<string, z.ZodType<unknown, string>>;

type ParsedOptions = { [K in keyof typeof parsers]: z.output<(typeof parsers)[K]> };

function durationSchema({ minMs = 0, maxMs }: { minMs?: number; maxMs: number }) {
  return z.string().transform((v, ctx) => {
    const ms = parseGoDuration(v);
    if (ms === null || ms < 0) {
      ctx.addIssue({ code: "custom", message: `"${v}" is not a duration such as 30m, 1h or 0` });
      return z.NEVER;
    }
    if (ms !== 0 && (ms < minMs || ms > maxMs)) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}" is out of range (${minMs / 1000}s to ${maxMs / 3_600_000}h)`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

/**
 * Why AGENT_URL cannot be used, or null. DevPod's inject script pastes it unquoted into
 * `curl -fsSL <url>/devpod-linux-<arch>` on the machine, so no white space or quotes;
 * curl also reads file:// (an agent stored on an air-gapped machine), from an absolute
 * path on the machine itself.
 */
function agentUrlProblem(v: string): string | null {
  const unsafe = /[\s'"]/.test(v);
  if (/^https?:\/\/[^/]/.test(v)) return unsafe ? "must not contain spaces or quotes" : null;
  if (!v.startsWith("file:")) {
    return "must be an http(s) URL or file:///absolute/path (a directory on the machine)";
  }
  if (!/^file:\/\/\/[^/]/.test(v) || unsafe) {
    return "must be file:///absolute/path: three slashes (no host), no spaces or quotes";
  }
  return null;
}

/** An RFC 1123 host name (what Dokploy's domain.create accepts): labels of 1–63 [a-z0-9-]. */
export function isHostName(host: string): boolean {
  return host.length <= 253 &&
    host.split(".").every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l));
}

function imageSchema() {
  return z.string().min(1, "must not be empty").regex(
    /^[a-z0-9][a-z0-9._\/:@-]*$/i,
    "is not an image reference such as debian:bookworm-slim",
  );
}

function booleanSchema() {
  return z.string().transform((v, ctx) => {
    const lower = v.toLowerCase();
    if (["true", "1", "yes"].includes(lower)) return true;
    if (["false", "0", "no", ""].includes(lower)) return false;
    ctx.addIssue({ code: "custom", message: `"${v}" must be true or false` });
    return z.NEVER;
  });
}

/**
 * An http(s) base URL a cache fetches from, with no credentials, query or fragment, and no
 * character that would need quoting in the compose file; normalised without trailing slash.
 */
function upstreamSchema(pathAllowed: boolean, what: string) {
  return z.string().transform((v, ctx) => {
    let url: URL | null = null;
    try {
      url = new URL(v);
    } catch { /* reported below */ }
    const plain = url && /^https?:$/.test(url.protocol) && !url.username && !url.password &&
      !url.search && !url.hash && (pathAllowed || /^\/?$/.test(url.pathname)) &&
      !/[\s'"$]/.test(v);
    if (!plain) {
      ctx.addIssue({ code: "custom", message: `"${v}" must be ${what}` });
      return z.NEVER;
    }
    return v.replace(/\/+$/, "");
  });
}

function parseOption<K extends keyof typeof parsers>(env: Env, name: K): ParsedOptions[K] {
  const spec = OPTIONS.find((o) => o.name === name)!;
  const value = optionValue(env, spec);
  if (spec.required && value === "") {
    throw new ConfigError(`${name} is required but empty; ${fixHint(name)}`);
  }
  const result = parsers[name].safeParse(value);
  if (!result.success) {
    const message = result.error.issues[0]?.message ?? "is invalid";
    // Never echo a secret back, even a malformed one.
    const shown = spec.password ? message.replace(value, "***") : message;
    throw new ConfigError(`${name} ${shown}; ${fixHint(name)}`);
  }
  return result.data as ParsedOptions[K];
}

/** Reads and validates every option; throws ConfigError naming the first bad one. */
export function loadConfig(env: Env): ProviderConfig {
  const o = Object.fromEntries(
    (Object.keys(parsers) as (keyof typeof parsers)[]).map((k) => [k, parseOption(env, k)]),
  ) as ParsedOptions;
  const preset = MACHINE_TYPES[o.MACHINE_TYPE];
  if (o.READY_TIMEOUT === 0) {
    throw new ConfigError(`READY_TIMEOUT must be above 0; ${fixHint("READY_TIMEOUT")}`);
  }
  return {
    serverUrl: o.DOKPLOY_SERVER_URL,
    token: o.DOKPLOY_API_TOKEN,
    projectName: o.DOKPLOY_PROJECT_NAME,
    server: o.DOKPLOY_SERVER_ID,
    machineType: o.MACHINE_TYPE,
    cpus: o.MACHINE_CPUS ?? preset.cpus,
    memoryMiB: o.MACHINE_MEMORY ?? preset.memoryMiB,
    image: o.MACHINE_IMAGE,
    dockerMode: o.DOCKER_MODE,
    inactivityTimeoutSec: Math.round(o.INACTIVITY_TIMEOUT / 1000),
    keepVolumes: o.KEEP_VOLUMES,
    sshHost: o.SSH_HOST,
    sshPortRange: o.SSH_PORT_RANGE,
    dokployNetwork: o.DOKPLOY_NETWORK,
    imageCache: o.IMAGE_CACHE,
    imageCacheImage: o.IMAGE_CACHE_IMAGE,
    imageCacheUpstream: o.IMAGE_CACHE_UPSTREAM,
    prebuilds: o.PREBUILDS,
    prebuildProxyImage: o.PREBUILD_PROXY_IMAGE,
    agentCacheUpstream: o.AGENT_CACHE_UPSTREAM,
    backup: o.BACKUP_DESTINATION === ""
      ? null
      : { destination: o.BACKUP_DESTINATION, schedule: o.BACKUP_SCHEDULE, keep: o.BACKUP_KEEP },
    previewDomain: o.PREVIEW_DOMAIN,
    sshReuseConnections: o.SSH_REUSE_CONNECTIONS,
    agentPath: o.AGENT_PATH,
    agentUrl: o.AGENT_URL,
    disableAgentTelemetry: cliTelemetryDisabled(env) || o.AGENT_URL !== null,
    readyTimeoutMs: o.READY_TIMEOUT,
    retryWindowMs: o.DOKPLOY_RETRY_WINDOW,
    debug: cliDebug(env),
  };
}
