/**
 * The network guard: machines the tests start may reach each other and the host, never
 * the world beyond it. It must not touch any other container on the engine, which may be
 * a contributor's own Docker, so it matches by interface name: every network the tests'
 * compose files create gets a bridge named `dpdt…` (set by the compose adapter's copy,
 * tests/emulator/machine/compose_command.ts), and one rule in DOCKER-USER sends what
 * enters from such a bridge (`-i dpdt+`) to a chain of our own:
 *
 *     -A DOCKER-USER -i dpdt+ -m comment --comment devpod-dokploy-test-guard -j DEVPOD-DOKPLOY-GUARD
 *     -A DEVPOD-DOKPLOY-GUARD -o dpdt+ -j RETURN            (to our own networks)
 *     -A DEVPOD-DOKPLOY-GUARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
 *     -A DEVPOD-DOKPLOY-GUARD -j REJECT                      (anything else they start)
 *
 * Added idempotently and removed exactly: every DOCKER-USER rule carrying the comment
 * (also an older version's `-o <default route> -j REJECT`), then the chain.
 */
import { createHash } from "node:crypto";
import { run } from "./run.ts";

/** Interface names are at most 15 bytes: the prefix and 11 hex digits. */
export const BRIDGE_PREFIX = "dpdt";
export const GUARD_COMMENT = "devpod-dokploy-test-guard";
export const GUARD_CHAIN = "DEVPOD-DOKPLOY-GUARD";
/** The daemon's bridge option that names a network's Linux bridge. */
export const BRIDGE_NAME_OPTION = "com.docker.network.bridge.name";

/** The bridge of network `network` of compose project `project`: stable, and ours by name. */
export function guardedBridgeName(project: string, network: string): string {
  const hash = createHash("sha256").update(`${project}\0${network}`).digest("hex");
  return BRIDGE_PREFIX + hash.slice(0, 11);
}

const JUMP = [
  "DOCKER-USER",
  "-i",
  `${BRIDGE_PREFIX}+`,
  "-m",
  "comment",
  "--comment",
  GUARD_COMMENT,
  "-j",
  GUARD_CHAIN,
];
const CHAIN_RULES = [
  ["-o", `${BRIDGE_PREFIX}+`, "-j", "RETURN"],
  ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"],
  ["-j", "REJECT"],
];

/** `-w`: wait for the xtables lock dockerd may hold instead of failing. */
function iptables(args: string[]) {
  return run("iptables", ["-w", ...args], { timeoutMs: 30_000 });
}

/** Ours in the filter table, from one `iptables -S`: DOCKER-USER's rules, our chain's. */
interface Listing {
  rules: string[];
  chain: string[] | null;
}

async function listing(): Promise<Listing> {
  const r = await iptables(["-S"]);
  const lines = r.code === 0 ? r.stdout.split("\n") : [];
  const words = (l: string) => l.trim().split(/\s+/);
  return {
    rules: lines.filter((l) => l.startsWith("-A DOCKER-USER ") && words(l).includes(GUARD_COMMENT)),
    chain: lines.includes(`-N ${GUARD_CHAIN}`)
      ? lines.filter((l) => l.startsWith(`-A ${GUARD_CHAIN} `))
      : null,
  };
}

/** The DOCKER-USER rules carrying our comment, as `iptables -S` prints them. */
export async function guardRules(): Promise<string[]> {
  return (await listing()).rules;
}

/** Whether our chain exists. */
export async function guardChainExists(): Promise<boolean> {
  return (await listing()).chain !== null;
}

/** `-A CHAIN spec…` (as `-S` prints) → the spec, for `-D CHAIN spec…`. */
function specOf(line: string): string[] {
  return line.trim().split(/\s+/).slice(1);
}

/** Whether the chain's rules are CHAIN_RULES (as `-S` prints them, with defaults added). */
function chainIsCurrent(rules: string[]): boolean {
  return rules.length === CHAIN_RULES.length &&
    rules.every((l, i) => CHAIN_RULES[i].every((w) => specOf(l).includes(w)));
}

async function must(what: string, args: string[]) {
  const r = await iptables(args);
  if (r.code !== 0) throw new Error(`cannot ${what}: ${r.stderr.trim()}`);
}

/**
 * Puts the guard in place; one `iptables -S` when it is. DOCKER-USER must exist (dockerd
 * makes it).
 */
export async function addNetworkGuard(): Promise<void> {
  const now = await listing();
  if (now.chain === null) await must("create the guard chain", ["-N", GUARD_CHAIN]);
  if (now.chain === null || !chainIsCurrent(now.chain)) {
    await must("empty the guard chain", ["-F", GUARD_CHAIN]);
    for (const rule of CHAIN_RULES) {
      await must("fill the guard chain", ["-A", GUARD_CHAIN, ...rule]);
    }
  }
  // Rules of an older guard (one matching all containers) go; ours stays, once.
  const jump = JUMP.join(" ");
  for (const line of now.rules) {
    if (specOf(line).join(" ") !== jump) await iptables(["-D", ...specOf(line)]);
  }
  if (!now.rules.some((line) => specOf(line).join(" ") === jump)) {
    await must("add the network guard", ["-I", ...JUMP]);
  }
}

/** Lifts every rule of ours and our chain; true when there was something to lift. */
export async function removeNetworkGuard(): Promise<boolean> {
  const now = await listing();
  let removed = false;
  for (const line of now.rules) {
    if ((await iptables(["-D", ...specOf(line)])).code === 0) removed = true;
  }
  if (now.chain !== null) {
    await iptables(["-F", GUARD_CHAIN]);
    if ((await iptables(["-X", GUARD_CHAIN])).code === 0) removed = true;
  }
  return removed;
}
