/**
 * provider.yaml as generated output: rendered from the typed option model in
 * `lib/options.ts`, never written by hand, and checked against the rules DevPod
 * applies when it loads the file (devpod-protocol.md §3.1–3.6).
 *
 * @example
 * ```ts
 * const text = renderProviderYaml({ version: "v1.2.3", repo: "me/devpod-provider-dokploy", binaries });
 * const problems = validateProviderConfig(parseProviderYaml(text)); // [] when DevPod accepts it
 * ```
 */
import { Document, parse, Scalar } from "yaml";
import { OPTION_GROUPS, OPTIONS, type OptionSpec } from "../lib/options.ts";

export type BinaryOs = "linux" | "darwin" | "windows";
export type BinaryArch = "amd64" | "arm64";

/** One entry of `binaries.DOKPLOY_PROVIDER` (devpod-protocol.md §3.5). */
export interface ProviderBinary {
  os: BinaryOs;
  arch: BinaryArch;
  /** Release URL or absolute local path. */
  path: string;
  /** sha256 hex of the file; omitted for development builds. */
  checksum?: string;
}

export interface RenderInput {
  /** semver, optionally with a leading `v` (the release tag). */
  version: string;
  /** GitHub `owner/name`, used for `home`. */
  repo: string;
  binaries: ProviderBinary[];
  /** Replaces MACHINE_IMAGE's default; the release pins the prebuilt image by digest. */
  machineImage?: string;
  /** Defaults to `dokploy`; the local development install uses `dokploy-dev`. */
  name?: string;
  /** Comment placed at the top of the file. */
  header?: string;
}

/** The platforms a release ships a binary for. */
export const PLATFORMS: readonly (readonly [BinaryOs, BinaryArch])[] = [
  ["linux", "amd64"],
  ["linux", "arm64"],
  ["darwin", "amd64"],
  ["darwin", "arm64"],
  ["windows", "amd64"],
];

export const PROVIDER_NAME = "dokploy";
/** The env var DevPod sets to the downloaded binary's path (§3.4). */
export const BINARY_VAR = "DOKPLOY_PROVIDER";
export const EXEC_VERBS = [
  "init",
  "create",
  "delete",
  "start",
  "stop",
  "status",
  "command",
  // The maintained fork's `devpod machine describe`; v0.6.15 ignores the key.
  "describe",
] as const;
export const PROVIDER_ICON =
  "https://raw.githubusercontent.com/Dokploy/dokploy/canary/apps/dokploy/logo.png";
export const PROVIDER_DESCRIPTION =
  "DevPod on Dokploy: every workspace gets its own machine, a Docker-in-Docker container deployed by Dokploy and reached over SSH.";

/** The provider.yaml content as a plain object, keys in the order they are written. */
export function providerConfig(input: RenderInput): Record<string, unknown> {
  return {
    name: input.name ?? PROVIDER_NAME,
    version: input.version,
    description: PROVIDER_DESCRIPTION,
    icon: PROVIDER_ICON,
    home: `https://github.com/${input.repo}`,
    optionGroups: OPTION_GROUPS.map((g) => ({
      name: g.name,
      defaultVisible: g.defaultVisible,
      options: OPTIONS.filter((o) => o.group === g.name).map((o) => o.name),
    })),
    options: Object.fromEntries(
      OPTIONS.map((o) => [o.name, renderOption(o, input.machineImage)]),
    ),
    agent: {
      // Explicit "false": an unset `local` makes `agent workspace up` overwrite the
      // host's daemon.json and HUP dockerd (devpod-protocol.md §3.6).
      local: "false",
      path: "${AGENT_PATH}",
      downloadURL: "${AGENT_URL}",
      // The machine bootstrap already runs Docker (dind); DevPod must not install its own.
      docker: { install: "false" },
    },
    binaries: { [BINARY_VAR]: input.binaries.map(renderBinary) },
    // Quoted so an install path with spaces survives the shell DevPod runs these in.
    exec: Object.fromEntries(EXEC_VERBS.map((v) => [v, `"\${${BINARY_VAR}}" ${v}`])),
  };
}

function renderOption(o: OptionSpec, machineImage?: string): Record<string, unknown> {
  const out: Record<string, unknown> = { description: o.description };
  if (o.displayName) out.displayName = o.displayName;
  if (o.type && o.type !== "string") out.type = o.type;
  const def = o.name === "MACHINE_IMAGE" && machineImage ? machineImage : o.default;
  if (def !== undefined) out.default = String(def);
  // DevPod's booleans default to false, so only true ones are written.
  for (const flag of ["required", "password", "global", "local", "mutable"] as const) {
    if (o[flag]) out[flag] = true;
  }
  if (o.enum) out.enum = o.enum.map((e) => ({ value: e.value, displayName: e.displayName }));
  if (o.suggestions) out.suggestions = [...o.suggestions];
  if (o.validationPattern) out.validationPattern = o.validationPattern;
  if (o.validationMessage) out.validationMessage = o.validationMessage;
  if (o.hidden) out.hidden = true;
  return out;
}

function renderBinary(b: ProviderBinary): Record<string, unknown> {
  const out: Record<string, unknown> = { os: b.os, arch: b.arch, path: b.path };
  if (b.checksum !== undefined) out.checksum = b.checksum;
  return out;
}

/**
 * Renders provider.yaml. Emitted with the YAML 1.1 schema, which is what DevPod's Go
 * parser speaks, so strings such as "false", "0", "on" or "0x1f" are quoted; checksums
 * are always quoted, as an all-digit hash would otherwise turn into a number.
 */
export function renderProviderYaml(input: RenderInput): string {
  const doc = new Document(providerConfig(input), { version: "1.1" });
  doc.commentBefore = input.header ?? null;
  for (const i of input.binaries.keys()) {
    const node = doc.getIn(["binaries", BINARY_VAR, i, "checksum"], true);
    if (node instanceof Scalar) node.type = Scalar.QUOTE_DOUBLE;
  }
  // lineWidth 0: no folding, one line per value keeps diffs readable.
  return doc.toString({ lineWidth: 0 });
}

/** Parses provider.yaml the way DevPod does: YAML 1.1 scalars (yes/on are booleans). */
export function parseProviderYaml(text: string): unknown {
  return parse(text, { version: "1.1" });
}

// ---------------------------------------------------------------------------
// Validation: the checks of DevPod's `pkg/provider/parse.go` and of Devsy's (v1.x, the
// same rules plus those of its proxy and daemon providers), plus the type checks their
// JSON decoding implies (wrongly typed values are rejected). Unknown keys are refused
// here to catch typos, although both decoders ignore them (which is why v0.6.15 loads a
// file with the fork's `exec.describe`, and DevPod one with Devsy's additions).

const TOP_KEYS = [
  "name",
  "version",
  "description",
  "icon",
  "iconDark",
  "home",
  "source",
  "optionGroups",
  "options",
  "agent",
  "exec",
  "binaries",
];
const OPTION_STRING_KEYS = [
  "description",
  "displayName",
  "type",
  "default",
  "command",
  "cache",
  "validationPattern",
  "validationMessage",
  "subOptionsCommand",
];
const OPTION_BOOL_KEYS = ["required", "password", "hidden", "local", "global", "mutable"];
const OPTION_KEYS = [...OPTION_STRING_KEYS, ...OPTION_BOOL_KEYS, "enum", "suggestions"];
const OPTION_TYPES = ["string", "multiline", "duration", "number", "boolean"];
const EXEC_KEYS = [
  "init",
  "command",
  "create",
  "delete",
  "start",
  "stop",
  "status",
  "describe",
  "proxy",
  // Devsy's daemon providers.
  "daemon",
];
/** The exec verbs of a machine provider, which proxy and daemon providers may not set (Devsy). */
const MACHINE_VERBS = ["command", "create", "start", "stop", "status", "delete"];
/** `agent.docker`; `helperImage` and `runtime` are Devsy's (DevPod ignores them). */
const AGENT_DOCKER_KEYS = ["path", "install", "builder", "env", "helperImage", "runtime"];
/** Devsy's container runtimes (pkg/docker/runtime.go RuntimeFromName), as it compares them. */
const DOCKER_RUNTIMES = ["", "docker", "podman", "nerdctl"];
/** What Devsy requires of `agent.driver: custom`. */
const CUSTOM_DRIVER_KEYS = [
  "targetArchitecture",
  "startDevContainer",
  "stopDevContainer",
  "runDevContainer",
  "deleteDevContainer",
  "findDevContainer",
  "commandDevContainer",
];
const BINARY_KEYS = ["os", "arch", "checksum", "path", "archivePath", "name"];
const AGENT_KEYS = [
  "local",
  "path",
  "dataPath",
  "downloadURL",
  "inactivityTimeout",
  "containerInactivityTimeout",
  "injectGitCredentials",
  "injectDockerCredentials",
  "exec",
  "binaries",
  "driver",
  "kubernetes",
  "docker",
  "dockerless",
  "custom",
];
const NAME_RE = /^[a-z0-9-]+$/;
const UPPER_NAME_RE = /^[A-Z0-9_]+$/;
/** semver.org's regex; DevPod uses blang/semver after stripping one leading `v`. */
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const GO_DURATION_RE = /^(0|([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** True when DevPod accepts `version` (semver, optional leading `v`). */
export function isProviderVersion(version: string): boolean {
  return SEMVER_RE.test(version.replace(/^v/, ""));
}

/** DevPod rule violations of a parsed provider.yaml; empty when DevPod would load it. */
export function validateProviderConfig(config: unknown): string[] {
  if (!isObj(config)) return ["provider.yaml must be a mapping"];
  const errors: string[] = [];
  unknownKeys(config, TOP_KEYS, "", errors);

  const name = config.name;
  if (typeof name !== "string" || name === "") errors.push("name is missing");
  else if (!NAME_RE.test(name)) errors.push(`name '${name}' may only contain a-z, 0-9 and '-'`);
  else if (name.length > 32) errors.push(`name '${name}' is longer than 32 characters`);

  if (config.version !== undefined) {
    if (typeof config.version !== "string") errors.push("version must be a string");
    else if (!isProviderVersion(config.version)) {
      errors.push(`version '${config.version}' is not semver (e.g. v1.2.3)`);
    }
  }
  for (const key of ["description", "icon", "iconDark", "home"]) {
    stringField(config, key, "", errors);
  }
  validateOptions(config.options, errors);
  validateOptionGroups(config.optionGroups, config.options, errors);
  validateAgent(config.agent, errors);
  validateBinaries(config.binaries, "binaries", errors);
  if (isObj(config.exec) && (config.exec.proxy !== undefined || config.exec.daemon !== undefined)) {
    validateProxyOrDaemon(config.exec, config.agent, errors);
  } else validateExec(config.exec, errors);
  return errors;
}

/** Devsy's proxy (`exec.proxy`) and daemon (`exec.daemon`) providers: no agent, no machine verbs. */
function validateProxyOrDaemon(exec: Obj, agent: unknown, errors: string[]): void {
  unknownKeys(exec, EXEC_KEYS, "exec", errors);
  const kind = exec.proxy !== undefined ? "proxy" : "daemon";
  if (isObj(agent) && Object.keys(agent).length > 0) {
    errors.push(`agent config is not allowed for ${kind} providers`);
  }
  for (const verb of MACHINE_VERBS) {
    if (hasCommand(exec[verb])) errors.push(`exec.${verb} is not allowed in ${kind} providers`);
  }
  const section = isObj(exec[kind]) ? exec[kind] as Obj : {};
  const required = kind === "proxy" ? ["status", "stop", "delete", "ssh", "up"] : ["start"];
  for (const k of required) {
    if (!hasCommand(section[k])) errors.push(`exec.${kind}.${k} is required for ${kind} providers`);
  }
}

/** A command as DevPod's StrArray decodes it: a non-empty string or list. */
function hasCommand(v: unknown): boolean {
  return (typeof v === "string" && v !== "") || (Array.isArray(v) && v.length > 0);
}

function validateOptions(options: unknown, errors: string[]): void {
  if (options === undefined) return;
  if (!isObj(options)) return void errors.push("options must be a mapping");
  for (const [name, opt] of Object.entries(options)) {
    const at = `options.${name}`;
    if (!UPPER_NAME_RE.test(name)) {
      errors.push(`option '${name}' may only contain A-Z, 0-9 and '_'`);
    }
    if (!isObj(opt)) {
      errors.push(`${at} must be a mapping`);
      continue;
    }
    unknownKeys(opt, OPTION_KEYS, at, errors);
    for (const k of OPTION_STRING_KEYS) stringField(opt, k, at, errors);
    for (const k of OPTION_BOOL_KEYS) {
      if (opt[k] !== undefined && typeof opt[k] !== "boolean") {
        errors.push(`${at}.${k} must be true or false, got ${JSON.stringify(opt[k])}`);
      }
    }
    if (typeof opt.type === "string" && !OPTION_TYPES.includes(opt.type)) {
      errors.push(`${at}.type '${opt.type}' must be one of ${OPTION_TYPES.join(", ")}`);
    }
    if (typeof opt.validationPattern === "string") {
      const problem = goRegexpProblem(opt.validationPattern);
      if (problem) errors.push(`${at}.validationPattern ${problem}`);
    }
    if (opt.default && opt.command) errors.push(`${at}: default and command cannot be combined`);
    if (opt.global && opt.cache) errors.push(`${at}: global and cache cannot be combined`);
    if (opt.global && opt.mutable) errors.push(`${at}: global and mutable cannot be combined`);
    if (opt.cache && !opt.command) errors.push(`${at}: cache needs command`);
    if (typeof opt.cache === "string" && opt.cache && !GO_DURATION_RE.test(opt.cache)) {
      errors.push(`${at}.cache '${opt.cache}' is not a duration`);
    }
    validateEnum(opt.enum, at, errors);
    if (
      opt.suggestions !== undefined &&
      !(Array.isArray(opt.suggestions) && opt.suggestions.every((s) => typeof s === "string"))
    ) errors.push(`${at}.suggestions must be a list of strings`);
  }
}

function validateEnum(values: unknown, at: string, errors: string[]): void {
  if (values === undefined) return;
  if (!Array.isArray(values)) return void errors.push(`${at}.enum must be a list`);
  for (const v of values) {
    const ok = typeof v === "string" ||
      (isObj(v) && typeof v.value === "string" &&
        (v.displayName === undefined || typeof v.displayName === "string"));
    if (!ok) errors.push(`${at}.enum entries must be strings or {value, displayName}`);
  }
}

/** RE2 (Go) has no lookaround or backreferences; JS accepts them, DevPod would not. */
function goRegexpProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
  } catch (e) {
    return `does not compile: ${(e as Error).message}`;
  }
  if (/\(\?<?[=!]|\\[1-9]/.test(pattern)) return "uses lookaround or a backreference (not RE2)";
  return null;
}

function validateOptionGroups(groups: unknown, options: unknown, errors: string[]): void {
  if (groups === undefined) return;
  if (!Array.isArray(groups)) return void errors.push("optionGroups must be a list");
  const seen = new Set<string>();
  groups.forEach((g, i) => {
    if (!isObj(g) || typeof g.name !== "string" || g.name === "") {
      return void errors.push(`optionGroups[${i}].name cannot be empty`);
    }
    unknownKeys(g, ["name", "options", "defaultVisible"], `optionGroups[${i}]`, errors);
    if (g.defaultVisible !== undefined && typeof g.defaultVisible !== "boolean") {
      errors.push(`optionGroups[${i}].defaultVisible must be true or false`);
    }
    const names = Array.isArray(g.options) ? g.options : [];
    for (const n of names) {
      if (!isObj(options) || !(String(n) in options)) {
        errors.push(`option '${n}' in option group '${g.name}' is not under options`);
      } else if (seen.has(String(n))) {
        errors.push(`option '${n}' is used in several option groups`);
      }
      seen.add(String(n));
    }
  });
}

function validateAgent(agent: unknown, errors: string[]): void {
  if (agent === undefined) return;
  if (!isObj(agent)) return void errors.push("agent must be a mapping");
  unknownKeys(agent, AGENT_KEYS, "agent", errors);
  for (const k of ["path", "dataPath", "downloadURL", "inactivityTimeout", "driver"]) {
    stringField(agent, k, "agent", errors);
  }
  // StrBool fields: "true"/"false" strings (or `${OPTION}`), plain YAML booleans also decode.
  for (const k of ["local", "injectGitCredentials", "injectDockerCredentials"]) {
    strBool(agent[k], `agent.${k}`, errors);
  }
  if (
    agent.driver !== undefined && !["docker", "kubernetes", "custom"].includes(String(agent.driver))
  ) {
    errors.push(`agent.driver '${agent.driver}' must be docker, kubernetes or custom`);
  }
  if (agent.docker !== undefined) {
    if (!isObj(agent.docker)) errors.push("agent.docker must be a mapping");
    else {
      unknownKeys(agent.docker, AGENT_DOCKER_KEYS, "agent.docker", errors);
      strBool(agent.docker.install, "agent.docker.install", errors);
      for (const k of ["path", "builder", "helperImage", "runtime"]) {
        stringField(agent.docker, k, "agent.docker", errors);
      }
      const runtime = agent.docker.runtime;
      // Devsy refuses an unknown runtime when the agent starts the devcontainer.
      if (
        typeof runtime === "string" && !/^\$\{?[A-Z0-9_]+\}?$/.test(runtime) &&
        !DOCKER_RUNTIMES.includes(runtime.trim().toLowerCase())
      ) errors.push(`agent.docker.runtime '${runtime}' must be docker, podman or nerdctl`);
    }
  }
  if (agent.driver === "custom") {
    const custom = isObj(agent.custom) ? agent.custom : {};
    for (const k of CUSTOM_DRIVER_KEYS) {
      if (!hasCommand(custom[k])) errors.push(`agent.custom.${k} is required`);
    }
  }
  validateBinaries(agent.binaries, "agent.binaries", errors);
}

function strBool(value: unknown, at: string, errors: string[]): void {
  if (value === undefined || typeof value === "boolean") return;
  if (typeof value !== "string" || !/^(true|false|\$\{?[A-Z0-9_]+\}?)$/.test(value)) {
    errors.push(`${at} must be "true" or "false", got ${JSON.stringify(value)}`);
  }
}

function validateBinaries(binaries: unknown, prefix: string, errors: string[]): void {
  if (binaries === undefined) return;
  if (!isObj(binaries)) return void errors.push(`${prefix} must be a mapping`);
  for (const [name, list] of Object.entries(binaries)) {
    if (!UPPER_NAME_RE.test(name)) {
      errors.push(`binary name '${name}' may only contain A-Z, 0-9 and '_'`);
    }
    if (!Array.isArray(list)) {
      errors.push(`${prefix}.${name} must be a list`);
      continue;
    }
    list.forEach((b, i) => {
      const at = `${prefix}.${name}[${i}]`;
      if (!isObj(b)) return void errors.push(`${at} must be a mapping`);
      unknownKeys(b, BINARY_KEYS, at, errors);
      for (const k of BINARY_KEYS) stringField(b, k, at, errors);
      if (!["linux", "darwin", "windows"].includes(String(b.os))) {
        errors.push(`${at}.os '${b.os ?? ""}' must be linux, darwin or windows`);
      }
      if (!b.arch) errors.push(`${at}.arch is required`);
      if (!b.path) errors.push(`${at}.path is required`);
      if (typeof b.path === "string" && /\.(gz|tar|tgz|zip)$/.test(b.path) && !b.archivePath) {
        errors.push(`${at}.archivePath is required because path is an archive`);
      }
      if (typeof b.checksum === "string" && !SHA256_RE.test(b.checksum)) {
        errors.push(`${at}.checksum is not a sha256 hex digest`);
      }
    });
  }
}

function validateExec(exec: unknown, errors: string[]): void {
  if (!isObj(exec)) return void errors.push("exec.command is required");
  unknownKeys(exec, EXEC_KEYS, "exec", errors);
  const has = (k: string) => hasCommand(exec[k]);
  for (const k of EXEC_KEYS.filter((k) => k !== "proxy" && k !== "daemon")) {
    const v = exec[k];
    if (v === undefined || typeof v === "string") continue;
    if (!Array.isArray(v) || !v.every((a) => typeof a === "string")) {
      errors.push(`exec.${k} must be a string or a list of strings`);
    }
  }
  if (!has("command")) errors.push("exec.command is required");
  // [when this is set, that is required] — DevPod's machine-provider pairs.
  const needs = [
    ["create", "delete"],
    ["delete", "create"],
    ["start", "stop"],
    ["stop", "start"],
    ["start", "status"],
    ["start", "create"],
  ];
  for (const [set, required] of needs) {
    if (has(set) && !has(required)) {
      errors.push(`exec.${required} is required when exec.${set} is set`);
    }
  }
}

function unknownKeys(obj: Obj, allowed: string[], at: string, errors: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) errors.push(`${at ? at + "." : ""}${k} is not a known field`);
  }
}

function stringField(obj: Obj, key: string, at: string, errors: string[]): void {
  const v = obj[key];
  if (v !== undefined && typeof v !== "string") {
    errors.push(`${at ? at + "." : ""}${key} must be a string, got ${JSON.stringify(v)}`);
  }
}

/**
 * This project's own rules on top of DevPod's: the daemon.json guard is explicit, the
 * binary exists for all five platforms, and (for releases) every binary is checksummed.
 */
export function checkProviderPolicy(
  config: unknown,
  { requireChecksums = false }: { requireChecksums?: boolean } = {},
): string[] {
  if (!isObj(config)) return ["provider.yaml must be a mapping"];
  const errors: string[] = [];
  if (!isObj(config.agent) || config.agent.local !== "false") {
    errors.push('agent.local must be the string "false" (devpod-protocol.md §3.6)');
  }
  const list = isObj(config.binaries) ? config.binaries[BINARY_VAR] : undefined;
  const entries = Array.isArray(list) ? list.filter(isObj) : [];
  for (const [os, arch] of PLATFORMS) {
    const entry = entries.find((b) => b.os === os && b.arch === arch);
    if (!entry) errors.push(`binaries.${BINARY_VAR} has no ${os}/${arch} entry`);
    else if (requireChecksums && typeof entry.checksum !== "string") {
      errors.push(`binaries.${BINARY_VAR} ${os}/${arch} has no checksum`);
    }
  }
  return errors;
}
