/**
 * From a compose file + Dokploy `env` text to what the emulator brings up: the
 * `machine` service (run), other services (recorded), their networks and volumes. Interpolation follows docker compose (compose-go) so that a
 * compose file the real server would mangle or reject is mangled or rejected here too.
 */
import { parse as parseYaml } from "yaml";

export interface VolumeMount {
  /** Named volume key as written in the compose file, e.g. "home". */
  source: string;
  target: string;
  /** `:ro` (or `read_only: true`); absent when read-write. */
  readOnly?: true;
}

export interface MachineSpec {
  appName: string;
  image: string;
  entrypoint: string[] | null;
  command: string[] | null;
  environment: Record<string, string>;
  /** Host port published for container port 22. */
  publishedPort: number;
  volumes: VolumeMount[];
  /** Docker names of the networks it joins, e.g. "<appName>_machine", "dokploy-network". */
  networks: string[];
  restart: string;
  privileged: boolean;
  /** `cpus:` (Docker's NanoCpus / 1e9), null when unlimited. */
  cpus: number | null;
  labels: Record<string, string>;
  /** `stop_grace_period` in ms; null: docker's default (10 s). */
  stopGraceMs: number | null;
}

export type SpecResult = { ok: true; spec: MachineSpec; warnings: string[] } | {
  ok: false;
  error: string;
  warnings: string[];
};

const ESCAPES: Record<string, string> = { n: "\n", r: "\r" };

/** Parses dotenv text as Dokploy stores it (`KEY=value` lines, values optionally quoted). */
export function parseDotenv(text: string | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of (text ?? "").split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([\w.-]+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2].trim();
    const q = value[0];
    if ((q === '"' || q === "'" || q === "`") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      // Double quotes take escapes: \n, \r, and a backslash before any other character.
      if (q === '"') value = value.replace(/\\(.)/g, (_, c) => ESCAPES[c] ?? c);
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[m[1]] = value;
  }
  return out;
}

export class InterpolationError extends Error {}

const NAME_START = /[_a-zA-Z]/;
const NAME_CHAR = /[_a-zA-Z0-9]/;

/**
 * Docker compose variable substitution: `$$` → `$`, `$VAR`, `${VAR}`, and the
 * `:-` `-` `:?` `?` `:+` `+` forms. A `$` before anything else stays literal; a `${`
 * that is not a valid expression is an error, as in compose.
 */
export function interpolate(
  text: string,
  vars: Record<string, string>,
  onMissing: (name: string) => void = () => {},
): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const next = text[i + 1];
    if (ch !== "$" || next === undefined) {
      out += ch;
      i++;
    } else if (next === "$") {
      out += "$";
      i += 2;
    } else if (NAME_START.test(next)) {
      let j = i + 1;
      while (j < text.length && NAME_CHAR.test(text[j])) j++;
      out += lookup(text.slice(i + 1, j), vars, onMissing);
      i = j;
    } else if (next === "{") {
      const end = matchingBrace(text, i + 1);
      if (end < 0) throw new InterpolationError(`Invalid template: ${JSON.stringify(text)}`);
      out += braced(text.slice(i + 2, end), vars, onMissing, text);
      i = end + 1;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

function lookup(name: string, vars: Record<string, string>, onMissing: (n: string) => void) {
  if (name in vars) return vars[name];
  onMissing(name);
  return "";
}

/** Index of the `}` closing the `{` at `open`, counting nested `${`. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "{" && text[i - 1] === "$") depth++;
    else if (text[i] === "}" && --depth === 0) return i;
  }
  return -1;
}

function braced(
  expr: string,
  vars: Record<string, string>,
  onMissing: (n: string) => void,
  whole: string,
): string {
  const m = /^([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-+?])([\s\S]*))?$/.exec(expr);
  if (!m) throw new InterpolationError(`Invalid template: ${JSON.stringify(whole)}`);
  const [, name, op, arg = ""] = m;
  const set = name in vars;
  const nonEmpty = set && vars[name] !== "";
  const present = op?.startsWith(":") ? nonEmpty : set;
  switch (op) {
    case undefined:
      return lookup(name, vars, onMissing);
    case ":-":
    case "-":
      return present ? vars[name] : interpolate(arg, vars, onMissing);
    case ":+":
    case "+":
      return present ? interpolate(arg, vars, onMissing) : "";
    default: // ":?" and "?"
      if (present) return vars[name];
      throw new InterpolationError(
        `required variable ${name} is missing a value: ${interpolate(arg, vars, onMissing)}`,
      );
  }
}

/** Applies `interpolate` to every string value (not key) of a parsed YAML tree. */
function interpolateTree(
  node: unknown,
  vars: Record<string, string>,
  path: string,
  onMissing: (n: string) => void,
): unknown {
  if (typeof node === "string") {
    try {
      return interpolate(node, vars, onMissing);
    } catch (e) {
      throw new InterpolationError(
        `invalid interpolation format for ${path}: ${(e as Error).message}. ` +
          "You may need to escape any $ with another $.",
      );
    }
  }
  if (Array.isArray(node)) {
    return node.map((v) => interpolateTree(v, vars, `${path}.[]`, onMissing));
  }
  if (node && typeof node === "object") {
    return Object.fromEntries(
      Object.entries(node).map((
        [k, v],
      ) => [k, interpolateTree(v, vars, `${path}.${k}`, onMissing)]),
    );
  }
  return node;
}

/** A top-level network as docker compose resolves it (after interpolation). */
export interface NetworkDecl {
  /** Key under the top-level `networks:` ("default" for the implicit one). */
  key: string;
  /** Docker's name: `name:` when given, else `<appName>_<key>`; an external one: its key. */
  name: string;
  external: boolean;
}

/** The label of the provider's backup sidecar, a service the host runtime really runs. */
export const ROLE_LABEL = "dev.devpod.role";
export const BACKUP_GUARD_ROLE = "backup-guard";

/**
 * A service the host runtime records but does not run (e.g. the image cache's
 * `registry`), or, with `run`, one it runs as a process (the backup guard).
 */
export interface ServiceSpec {
  service: string;
  image: string;
  volumes: VolumeMount[];
  /** Docker names of the networks it joins. */
  networks: string[];
  restart: string;
  labels: Record<string, string>;
  /** Only for a service labelled `dev.devpod.role: backup-guard`: how to run it. */
  run?: RunSpec;
}

/** What a run service's container executes, as compose gives it to docker. */
export interface RunSpec {
  entrypoint: string[] | null;
  command: string[] | null;
  environment: Record<string, string>;
  /** `stop_grace_period` in ms; null: docker's default (10 s). */
  stopGraceMs: number | null;
  /** `network_mode`, e.g. "none"; null when the service joins networks. */
  networkMode: string | null;
}

/** What `docker compose up` of one project brings up, as the host runtime needs it. */
export interface ProjectSpec {
  appName: string;
  /** `services.machine`, run as a real sshd; null when the file has none. */
  machine: MachineSpec | null;
  /** Every other service, in file order (recorded, not run). */
  services: ServiceSpec[];
  /**
   * The networks some service joins, in declaration order (the implicit `default` last);
   * compose drops unused ones, so an unused external network is never looked up.
   */
  networks: NetworkDecl[];
  /** Named volume keys some service mounts. */
  volumes: string[];
}

export type ProjectResult = { ok: true; project: ProjectSpec; warnings: string[] } | {
  ok: false;
  error: string;
  warnings: string[];
};

/**
 * Reads a compose project after the variable substitution docker compose applies with
 * the `.env` Dokploy writes (APP_NAME, COMPOSE_PROJECT_NAME and the compose `env`).
 * `services.machine` becomes a MachineSpec; other services with an image are passive
 * records. Errors carry docker-compose-like messages for the deploy log.
 */
export function projectSpec(
  composeFile: string,
  envText: string | null,
  appName: string,
): ProjectResult {
  const warnings: string[] = [];
  const fail = (error: string): ProjectResult => ({ ok: false, error, warnings });
  const vars = { APP_NAME: appName, COMPOSE_PROJECT_NAME: appName, ...parseDotenv(envText) };
  const onMissing = (name: string) => {
    const w = `The "${name}" variable is not set. Defaulting to a blank string.`;
    if (!warnings.includes(w)) warnings.push(w);
  };

  let doc: unknown;
  try {
    doc = parseYaml(composeFile);
  } catch (e) {
    return fail(`yaml: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!isMap(doc)) return fail("Top-level object must be a mapping");
  try {
    doc = interpolateTree(doc, vars, "", onMissing);
  } catch (e) {
    return fail((e as Error).message.replace(/for \./, "for "));
  }
  const root = doc as Record<string, unknown>;
  const services = root.services ?? {};
  if (!isMap(services)) return fail("services must be a mapping");
  if (!Object.keys(services).length) return fail("no service selected");

  const declared = new Map<string, NetworkDecl>();
  for (const [key, value] of Object.entries(isMap(root.networks) ? root.networks : {})) {
    const n = isMap(value) ? value : {};
    const external = n.external === true || isMap(n.external);
    const legacyName = isMap(n.external) && typeof n.external.name === "string"
      ? n.external.name
      : undefined;
    const name = typeof n.name === "string" && n.name
      ? n.name
      : legacyName ?? (external ? key : `${appName}_${key}`);
    declared.set(key, { key, name, external });
  }
  if (!declared.has("default")) {
    declared.set("default", { key: "default", name: `${appName}_default`, external: false });
  }
  const declaredVolumes = isMap(root.volumes) ? Object.keys(root.volumes) : [];

  let machine: MachineSpec | null = null;
  const others: ServiceSpec[] = [];
  const usedNetworks = new Set<string>();
  const usedVolumes = new Set<string>();
  for (const [service, value] of Object.entries(services)) {
    const svc = isMap(value) ? value : {};
    if (typeof svc.image !== "string" || !svc.image) {
      return fail(
        `service "${service}" has neither an image nor a build context specified: ` +
          "invalid compose project",
      );
    }
    const volumes: VolumeMount[] = [];
    for (const v of asList(svc.volumes)) {
      const mount = parseVolume(v);
      if (!mount) continue; // bind mounts and tmpfs do not matter to the emulator
      if (!declaredVolumes.includes(mount.source)) {
        return fail(
          `service "${service}" refers to undefined volume ${mount.source}: invalid compose project`,
        );
      }
      volumes.push(mount);
      usedVolumes.add(mount.source);
    }
    const keys = networkKeys(svc);
    for (const key of keys) {
      if (!declared.has(key)) {
        return fail(
          `service "${service}" refers to undefined network ${key}: invalid compose project`,
        );
      }
      usedNetworks.add(key);
    }
    const networks = keys.map((k) => declared.get(k)!.name);
    const restart = typeof svc.restart === "string" ? svc.restart : "no";
    const labels = isMap(svc.labels) ? stringMap(svc.labels) : {};
    const stopGraceMs = svc.stop_grace_period === undefined
      ? null
      : parseDuration(String(svc.stop_grace_period));
    if (Number.isNaN(stopGraceMs)) {
      return fail(
        `services.${service}.stop_grace_period: invalid duration ` +
          `${JSON.stringify(svc.stop_grace_period)}`,
      );
    }
    if (service === "machine") {
      const port = asList(svc.ports).map(parsePort).find((p) => p !== null);
      if (port === undefined) {
        return fail(
          'emulator: service "machine" must publish container port 22 (ports: ["<host>:22"])',
        );
      }
      machine = {
        appName,
        image: svc.image,
        entrypoint: asCommand(svc.entrypoint),
        command: asCommand(svc.command),
        environment: asEnvironment(svc.environment, vars),
        publishedPort: port,
        volumes,
        networks,
        restart,
        privileged: svc.privileged === true,
        cpus: svc.cpus === undefined || svc.cpus === null ? null : Number(svc.cpus),
        labels,
        stopGraceMs,
      };
    } else {
      if (asList(svc.ports).length) {
        return fail(
          `emulator: service "${service}" publishes ports; the host runtime runs only ` +
            "services.machine and records other services without running them",
        );
      }
      const run: RunSpec | undefined = labels[ROLE_LABEL] === BACKUP_GUARD_ROLE
        ? {
          entrypoint: asCommand(svc.entrypoint),
          command: asCommand(svc.command),
          environment: asEnvironment(svc.environment, vars),
          stopGraceMs,
          networkMode: typeof svc.network_mode === "string" ? svc.network_mode : null,
        }
        : undefined;
      others.push({
        service,
        image: svc.image,
        volumes,
        networks,
        restart,
        labels,
        ...(run ? { run } : {}),
      });
    }
  }
  return {
    ok: true,
    warnings,
    project: {
      appName,
      machine,
      services: others,
      networks: [...declared.values()].filter((n) => usedNetworks.has(n.key)),
      volumes: declaredVolumes.filter((v) => usedVolumes.has(v)),
    },
  };
}

/**
 * Reads the `machine` service out of a compose file (see projectSpec); a file without
 * one is an error here.
 */
export function machineSpec(
  composeFile: string,
  envText: string | null,
  appName: string,
): SpecResult {
  const r = projectSpec(composeFile, envText, appName);
  if (!r.ok) return r;
  if (!r.project.machine) {
    return {
      ok: false,
      error: "no such service: machine (the compose file must define services.machine)",
      warnings: r.warnings,
    };
  }
  return { ok: true, spec: r.project.machine, warnings: r.warnings };
}

/** The network keys a service joins: list or map form; none given means `default`. */
function networkKeys(svc: Record<string, unknown>): string[] {
  if (Array.isArray(svc.networks)) return svc.networks.map(String);
  if (isMap(svc.networks)) return Object.keys(svc.networks);
  // network_mode (host, none, service:x, container:x) joins no compose network.
  return svc.network_mode === undefined ? ["default"] : [];
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function stringMap(m: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v == null ? "" : String(v)]));
}

/** Compose accepts a list or a string (split like a shell would, simplified to spaces). */
function asCommand(v: unknown): string[] | null {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string") return v.split(/\s+/).filter(Boolean);
  return null;
}

/** `environment:` as a map or a `KEY=value` list; a bare key takes the value from `vars`. */
function asEnvironment(v: unknown, vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  if (isMap(v)) {
    for (const [k, val] of Object.entries(v)) {
      if (val === null || val === undefined) {
        if (k in vars) out[k] = vars[k];
      } else out[k] = String(val);
    }
  } else {
    for (const item of asList(v)) {
      const s = String(item);
      const i = s.indexOf("=");
      if (i >= 0) out[s.slice(0, i)] = s.slice(i + 1);
      else if (s in vars) out[s] = vars[s];
    }
  }
  return out;
}

function parseVolume(v: unknown): VolumeMount | null {
  if (isMap(v)) {
    if ((v.type ?? "volume") !== "volume" || typeof v.source !== "string") return null;
    const ro = v.read_only === true ? { readOnly: true as const } : {};
    return { source: v.source, target: String(v.target), ...ro };
  }
  if (typeof v !== "string") return null;
  const [source, target, mode = ""] = v.split(":");
  if (!target || source.startsWith("/") || source.startsWith(".") || source.startsWith("~")) {
    return null;
  }
  const ro = mode.split(",").includes("ro") ? { readOnly: true as const } : {};
  return { source, target, ...ro };
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration ("30s", "1m30s", "500ms") in ms, as compose reads `stop_grace_period`; NaN if bad. */
export function parseDuration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== text.trim()) return NaN;
  return parts.reduce((ms, [, n, unit]) => ms + Number(n) * DURATION_UNITS[unit], 0);
}

/** The host port mapped to container port 22, from short ("[ip:]host:22[/tcp]") or long syntax. */
function parsePort(v: unknown): number | null {
  if (isMap(v)) {
    if (Number(v.target) !== 22 || v.published === undefined) return null;
    return Number(v.published);
  }
  const s = String(v).replace(/\/tcp$/, "");
  const parts = s.split(":");
  if (parts.length < 2 || parts[parts.length - 1] !== "22") return null;
  const host = Number(parts[parts.length - 2]);
  return Number.isInteger(host) && host > 0 && host < 65536 ? host : null;
}
