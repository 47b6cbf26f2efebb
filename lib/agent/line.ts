/**
 * Which DevPod agent a CLI needs (issue 24): the agent is the CLI's own release binary,
 * of exactly its line (who releases it), version and the machine's architecture. Each
 * line's CLI, with no AGENT_URL, has the machine download it from its GitHub release
 * (read from their download code: loft-sh/devpod v0.6.15 `pkg/agent/agent.go`,
 * skevetter/devpod v0.26 and devsy-org/devsy v1.x `pkg/inject/download_urls.go`):
 *
 *   https://github.com/<owner>/<repo>/releases/download/<version>/<bin>-linux-<amd64|arm64>
 *
 * That URL, which DevPod itself writes into the inject script on every call, is what
 * names the agent here: nothing else tells the provider the CLI's version (no variable
 * of any line carries it). Dev builds use `…/releases/latest/download/…`, which names no
 * version and is never cached.
 */

export type AgentLine = "loft-sh" | "skevetter" | "devsy";
export type AgentArch = "amd64" | "arm64";

export interface LineRelease {
  line: AgentLine;
  /** owner/repo on GitHub. */
  repo: string;
  /** The binary's base name: `<bin>-linux-<arch>`. */
  bin: "devpod" | "devsy";
}

export const LINES: readonly LineRelease[] = [
  { line: "loft-sh", repo: "loft-sh/devpod", bin: "devpod" },
  { line: "skevetter", repo: "skevetter/devpod", bin: "devpod" },
  { line: "devsy", repo: "devsy-org/devsy", bin: "devsy" },
];

/** Where every line publishes its releases (the agent cache's default upstream too). */
export const GITHUB = "https://github.com";

/** One agent binary: what the cache stores and serves. */
export interface AgentRelease {
  line: AgentLine;
  version: string;
  arch: AgentArch;
}

/**
 * A release tag as the lines write them (v0.6.15, v0.26.1, v1.1.0, v0.7.0-alpha.9):
 * `v` and a digit, then letters, digits, dots, plus and minus (no slash, no dot-dot).
 */
export const VERSION_PATTERN = "v[0-9][0-9A-Za-z.+-]*";
const VERSION = new RegExp(`^${VERSION_PATTERN}$`);

/** The release's path, as on GitHub and on the cache: `/<repo>/releases/download/<v>/<file>`. */
export function releasePath(r: AgentRelease): string {
  const l = lineOf(r.line);
  return `/${l.repo}/releases/download/${r.version}/${l.bin}-linux-${r.arch}`;
}

/** The URL the CLI of this line and version downloads its agent from by default. */
export function releaseUrl(r: AgentRelease, base = GITHUB): string {
  return `${base.replace(/\/+$/, "")}${releasePath(r)}`;
}

/** The release an agent path names; null for anything else (the cache serves nothing else). */
export function parseReleasePath(path: string): AgentRelease | null {
  const m = /^\/([^/]+\/[^/]+)\/releases\/download\/([^/]+)\/([a-z]+)-linux-(amd64|arm64)$/
    .exec(path.replace(/\/{2,}/g, "/"));
  if (!m || !VERSION.test(m[2]) || m[2].includes("..")) return null;
  const l = LINES.find((x) => x.repo === m[1] && x.bin === m[3]);
  return l ? { line: l.line, version: m[2], arch: m[4] as AgentArch } : null;
}

/** The release a default download URL names; null for a mirror, a file:// or a dev build. */
export function parseReleaseUrl(url: string): AgentRelease | null {
  if (!url.startsWith(`${GITHUB}/`)) return null;
  return parseReleasePath(url.slice(GITHUB.length));
}

export function lineOf(line: AgentLine): LineRelease {
  return LINES.find((l) => l.line === line)!;
}

/**
 * The regular expression (nginx and sh `grep -E` alike) of the paths the cache serves:
 * each line's repository with its own binary name, a release tag, linux amd64/arm64.
 */
export function servedPathPattern(): string {
  const repos = LINES.map((l) => `${l.repo}/releases/download/${VERSION_PATTERN}/${l.bin}`);
  return `^/(${repos.join("|")})-linux-(amd64|arm64)$`;
}
