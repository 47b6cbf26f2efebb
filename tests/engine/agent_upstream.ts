/**
 * A stand-in for GitHub's release downloads on the test engine (issue 24): nginx (the
 * `front` test image) serving a host directory laid out as GitHub's paths
 * (`/<owner>/<repo>/releases/download/<version>/<file>`), on a network of ours under an
 * alias, logging each request so tests can count what it sent. Releases are written as
 * the lines publish them: the binary and, where asked, a goreleaser `checksums.txt`.
 */
import { join } from "node:path";
import { type AgentRelease, releasePath } from "../../lib/agent/line.ts";
import type { Engine } from "./engine.ts";
import { docker } from "./images.ts";

export const STAND_IN_PORT = 8080;

export interface GithubStandIn {
  name: string;
  /** Base URL on its network: what AGENT_CACHE_UPSTREAM names. */
  url: string;
  dir: string;
  /** How many times it answered GET `path` with 200. */
  gets(path: string): Promise<number>;
  stop(): Promise<void>;
  remove(): Promise<void>;
}

const CONF = `daemon off;
user root;
worker_processes 1;
error_log stderr warn;
pid /tmp/nginx.pid;
events { worker_connections 256; }
http {
  log_format gets '$request_method $uri $status';
  access_log /dev/stdout gets;
  sendfile on;
  default_type application/octet-stream;
  server { listen ${STAND_IN_PORT}; root /srv; }
}
`;

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Random bytes standing in for an agent binary (incompressible, as a Go binary nearly is). */
export function fakeAgent(bytes: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/**
 * Writes release `r` into `dir`; `checksum`: "right" publishes the binary's sha256 in
 * checksums.txt, "wrong" another one, "none" no list at all. Returns the binary's sha256.
 */
export async function publish(
  dir: string,
  r: AgentRelease,
  bytes: Uint8Array<ArrayBuffer>,
  checksum: "right" | "wrong" | "none",
): Promise<string> {
  const path = join(dir, releasePath(r));
  const folder = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(folder, { recursive: true });
  await Deno.writeFile(path, bytes);
  const sum = await sha256Hex(bytes);
  if (checksum !== "none") {
    const listed = checksum === "right" ? sum : "f".repeat(64);
    const name = path.slice(path.lastIndexOf("/") + 1);
    await Deno.writeTextFile(join(folder, "checksums.txt"), `${listed}  ${name}\n`);
  }
  return sum;
}

export async function startGithubStandIn(
  engine: Engine,
  o: {
    name: string;
    image: string;
    network: string;
    alias: string;
    labels: Record<string, string>;
  },
): Promise<GithubStandIn> {
  const dir = await Deno.makeTempDir({ prefix: "devpod-github-" });
  await Deno.chmod(dir, 0o755);
  const labels = Object.entries(o.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  const r = await docker(engine, [
    "run",
    "-d",
    "--name",
    o.name,
    "--network",
    o.network,
    "--network-alias",
    o.alias,
    ...labels,
    "-v",
    `${dir}:/srv:ro`,
    "-e",
    `CONF=${CONF}`,
    "--entrypoint",
    "/bin/sh",
    o.image,
    "-c",
    'printf "%s" "$CONF" >/tmp/nginx.conf && exec nginx -c /tmp/nginx.conf',
  ]);
  if (r.code !== 0) throw new Error(`the GitHub stand-in did not start: ${r.stderr}`);
  return {
    name: o.name,
    url: `http://${o.alias}:${STAND_IN_PORT}`,
    dir,
    async gets(path: string) {
      const logs = await docker(engine, ["logs", o.name]);
      return logs.stdout.split("\n").filter((l) => l === `GET ${path} 200`).length;
    },
    async stop() {
      await docker(engine, ["stop", "-t", "1", o.name]);
    },
    async remove() {
      await docker(engine, ["rm", "-f", o.name]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
