/**
 * Dokploy's `docker compose` command lines (v2) run on this host's compose. Test-only.
 * With the compose v2 plugin they run as they are. Debian ships only compose v1 (1.29),
 * which differs:
 *   - it reads YAML 1.1, where `32453:22` is a base-60 number: compose reads a copy with
 *     every string quoted (`.docker-compose.test.yml` beside the original);
 *   - it names containers `app_machine_1`: the copy sets v2's `app-machine-1`, unless a
 *     test asks for v1's names (`names: "v1"`, on either compose): what the provider
 *     relies on must not be a naming convention (issue 26);
 *   - it cannot `-p P stop|down` without a file: those find the project's containers,
 *     networks and volumes by the `com.docker.compose.project` label, as v2 does (a
 *     network that cannot go, e.g. still used by another project's container, does not
 *     keep the volumes: v2 removes both independently and then fails);
 *   - it words a missing external network differently: its message is put in v2's words
 *     (`v2Wording`), the one a Dokploy server prints (without swarm mode, see below).
 * Two differences from Dokploy are deliberate, on either compose: the copy binds published
 * ports to a loopback address (the server's, 127.0.0.1 by default), so no test machine is
 * reachable from outside this host; and every network it creates gets a bridge named by
 * `guardedBridgeName`, the only traffic the tests' network guard stops (engine/guard.ts).
 */
import YAML from "yaml";
import type { Engine } from "../../engine/engine.ts";
import { BRIDGE_NAME_OPTION, guardedBridgeName } from "../../engine/guard.ts";
import { run } from "../../engine/run.ts";

export const TEST_FILE = ".docker-compose.test.yml";
const PROJECT_LABEL = "com.docker.compose.project";

export interface ComposeRun {
  code: number;
  /** stdout and stderr, merged as `2>&1` would. */
  output: string;
}

interface Invocation {
  project: string;
  file: string | null;
  command: string;
  flags: string[];
}

/** Splits `-p P [-f F] COMMAND FLAGS…` (the only shapes Dokploy uses). */
export function parseInvocation(argv: string[]): Invocation {
  let project = "";
  let file: string | null = null;
  let i = 0;
  for (; i < argv.length && argv[i].startsWith("-"); i += 2) {
    if (argv[i] === "-p") project = argv[i + 1];
    else if (argv[i] === "-f") file = argv[i + 1];
    else throw new Error(`compose adapter: unsupported global flag ${argv[i]}`);
  }
  if (!project) throw new Error("compose adapter: -p PROJECT is required");
  return { project, file, command: argv[i] ?? "", flags: argv.slice(i + 1) };
}

/** Which compose's container names the machines get: `<p>-<s>-1` (v2) or `<p>_<s>_1` (v1). */
export type ContainerNames = "v2" | "v1";

/** The file compose reads instead of Dokploy's (see the module comment). */
export function toTestFile(
  composeText: string,
  project: string,
  hostIp = "127.0.0.1",
  names: ContainerNames = "v2",
): string {
  const doc = YAML.parse(composeText) as Record<string, unknown>;
  const services = (doc.services ?? {}) as Record<string, Record<string, unknown>>;
  const sep = names === "v2" ? "-" : "_";
  for (const [name, svc] of Object.entries(services)) {
    svc.container_name ??= `${project}${sep}${name}${sep}1`;
    if (Array.isArray(svc.ports)) svc.ports = svc.ports.map((p) => loopbackPort(p, hostIp));
  }
  guardNetworks(doc, project);
  return YAML.stringify(doc, { defaultStringType: "QUOTE_DOUBLE", lineWidth: 0 });
}

/**
 * Names the bridge of each network compose creates for the project: those declared (not
 * external, bridge driver) and the implicit `default` when a service joins no network.
 */
function guardNetworks(doc: Record<string, unknown>, project: string) {
  const services = Object.values((doc.services ?? {}) as Record<string, Record<string, unknown>>);
  const networks = (doc.networks ??= {}) as Record<string, Record<string, unknown> | null>;
  if (services.some((svc) => !svc.networks && !svc.network_mode)) networks.default ??= {};
  for (const [key, network] of Object.entries(networks)) {
    const net = networks[key] = network ?? {};
    if (net.external || (net.driver ?? "bridge") !== "bridge") continue;
    const opts = (net.driver_opts ??= {}) as Record<string, string>;
    opts[BRIDGE_NAME_OPTION] ??= guardedBridgeName(project, key);
  }
  if (!Object.keys(networks).length) delete doc.networks;
}

/** "32453:22" → "127.0.0.1:32453:22" (or the server's address); one with an address keeps it. */
function loopbackPort(port: unknown, hostIp: string): unknown {
  if (typeof port === "object" && port !== null) return { host_ip: hostIp, ...port };
  const s = String(port);
  return s.split(":").length === 2 ? `${hostIp}:${s}` : s;
}

/** Runs `docker compose ARGV` from `cwd` with exactly `env` (plus the engine's DOCKER_HOST). */
export async function dockerCompose(
  engine: Engine,
  argv: string[],
  opts: {
    cwd: string;
    env: Record<string, string>;
    timeoutMs?: number;
    /** The address published ports bind to (default 127.0.0.1). */
    hostIp?: string;
    /** Container names (default v2's, as a Dokploy server gives). */
    names?: ContainerNames;
  },
): Promise<ComposeRun> {
  const inv = parseInvocation(argv);
  const env = { ...opts.env, DOCKER_HOST: engine.host };
  const sh = (args: string[]) => merged(args, opts.cwd, env, opts.timeoutMs ?? 300_000);
  const v2 = (args: string[]) => sh([engine.cli, "compose", "-p", inv.project, ...args]);
  if (inv.command === "up") {
    const source = await Deno.readTextFile(`${opts.cwd}/${inv.file ?? "docker-compose.yml"}`);
    await Deno.writeTextFile(
      `${opts.cwd}/${TEST_FILE}`,
      toTestFile(source, inv.project, opts.hostIp, opts.names),
    );
    const up = ["-f", TEST_FILE, "up", ...inv.flags];
    if (engine.compose === "v2") return await v2(up);
    const r = await sh(["docker-compose", "-p", inv.project, ...up]);
    return { ...r, output: v2Wording(r.output) };
  }
  if (inv.command !== "stop" && inv.command !== "down") {
    throw new Error(`compose adapter: unsupported command ${inv.command}`);
  }
  if (engine.compose === "v2") return await v2([inv.command, ...inv.flags]);
  const down = inv.command === "down";
  return await byLabel(engine, inv.project, sh, down, down && inv.flags.includes("--volumes"));
}

const V1_MISSING_NETWORK =
  /^(?:ERROR: )?Network (\S+) declared as external, but could not be found\. Please create the network manually using `docker network create \S+` and try again\.$/gm;

/**
 * compose v1's messages in v2's words, where the provider reads them. v2 (not in swarm
 * mode) says `network X declared as external, but could not be found`; v1 capitalises
 * and adds advice.
 */
export function v2Wording(output: string): string {
  return output.replace(
    V1_MISSING_NETWORK,
    (_, name) => `network ${name} declared as external, but could not be found`,
  );
}

/**
 * v2's `stop` / `down [--volumes]` for a project, found by its label. Every step runs
 * even when an earlier one failed (v2 removes networks and volumes independently); the
 * result fails if any did.
 */
async function byLabel(
  engine: Engine,
  project: string,
  sh: (args: string[]) => Promise<ComposeRun>,
  remove: boolean,
  volumes: boolean,
): Promise<ComposeRun> {
  const filter = `label=${PROJECT_LABEL}=${project}`;
  const list = async (args: string[]) => {
    const r = await sh([engine.cli, ...args, "--filter", filter]);
    return r.code === 0 ? r.output.split("\n").filter(Boolean) : [];
  };
  let output = "";
  let failed = false;
  const step = async (args: string[]) => {
    const r = await sh([engine.cli, ...args]);
    output += r.output;
    if (r.code !== 0) failed = true;
  };
  const containers = await list(["ps", "-aq"]);
  if (containers.length) await step(["stop", ...containers]);
  if (remove) {
    if (containers.length) await step(["rm", ...containers]);
    const networks = await list(["network", "ls", "-q"]);
    if (networks.length) await step(["network", "rm", ...networks]);
    if (volumes) {
      const vols = await list(["volume", "ls", "-q"]);
      if (vols.length) await step(["volume", "rm", ...vols]);
    }
  }
  return { code: failed ? 1 : 0, output };
}

/** `sh -c 'exec "$@" 2>&1'`: one stream, as Dokploy reads a command's output. */
async function merged(
  argv: string[],
  cwd: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<ComposeRun> {
  const r = await run("/bin/sh", ["-c", 'exec "$@" 2>&1', "sh", ...argv], {
    cwd,
    env,
    clearEnv: true,
    timeoutMs,
  });
  return { code: r.code, output: r.stdout };
}
