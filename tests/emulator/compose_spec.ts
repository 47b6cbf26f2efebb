/**
 * From a compose file + Dokploy `env` text to the one thing the emulator runs: the
 * `machine` service. Interpolation follows docker compose (compose-go) so that a
 * compose file the real server would mangle or reject is mangled or rejected here too.
 */
import { parse as parseYaml } from "yaml";

export interface VolumeMount {
  /** Named volume key as written in the compose file, e.g. "home". */
  source: string;
  target: string;
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
  restart: string;
  privileged: boolean;
  /** `cpus:` (Docker's NanoCpus / 1e9), null when unlimited. */
  cpus: number | null;
  labels: Record<string, string>;
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

/**
 * Reads the `machine` service out of a compose file, after the variable substitution
 * docker compose applies with the `.env` Dokploy writes (APP_NAME, COMPOSE_PROJECT_NAME
 * and the compose `env`). Errors carry docker-compose-like messages for the deploy log.
 */
export function machineSpec(
  composeFile: string,
  envText: string | null,
  appName: string,
): SpecResult {
  const warnings: string[] = [];
  const fail = (error: string): SpecResult => ({ ok: false, error, warnings });
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
  const services = root.services;
  if (!isMap(services) || !isMap(services.machine)) {
    return fail("no such service: machine (the compose file must define services.machine)");
  }
  const svc = services.machine as Record<string, unknown>;
  if (typeof svc.image !== "string" || !svc.image) {
    return fail(
      'service "machine" has neither an image nor a build context specified: invalid compose project',
    );
  }
  const declaredVolumes = isMap(root.volumes) ? Object.keys(root.volumes) : [];
  const volumes: VolumeMount[] = [];
  for (const v of asList(svc.volumes)) {
    const mount = parseVolume(v);
    if (!mount) continue; // bind mounts and tmpfs do not matter to the emulator
    if (!declaredVolumes.includes(mount.source)) {
      return fail(
        `service "machine" refers to undefined volume ${mount.source}: invalid compose project`,
      );
    }
    volumes.push(mount);
  }
  const port = asList(svc.ports).map(parsePort).find((p) => p !== null);
  if (port === undefined) {
    return fail(
      'emulator: service "machine" must publish container port 22 (ports: ["<host>:22"])',
    );
  }
  return {
    ok: true,
    warnings,
    spec: {
      appName,
      image: svc.image,
      entrypoint: asCommand(svc.entrypoint),
      command: asCommand(svc.command),
      environment: asEnvironment(svc.environment, vars),
      publishedPort: port,
      volumes,
      restart: typeof svc.restart === "string" ? svc.restart : "no",
      privileged: svc.privileged === true,
      cpus: svc.cpus === undefined || svc.cpus === null ? null : Number(svc.cpus),
      labels: isMap(svc.labels) ? stringMap(svc.labels) : {},
    },
  };
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
    return { source: v.source, target: String(v.target) };
  }
  if (typeof v !== "string") return null;
  const [source, target] = v.split(":");
  if (!target || source.startsWith("/") || source.startsWith(".") || source.startsWith("~")) {
    return null;
  }
  return { source, target };
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
