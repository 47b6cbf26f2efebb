/**
 * Local registries on the test engine, for the image cache's tests and bench (no registry
 * on the internet is reachable, nor may be): the "upstream" a cache pulls through from,
 * standing in for Docker Hub, holds a test image pushed into it over a port published on
 * 127.0.0.1 only; other containers reach it by its alias on a network the test or the
 * provider made. Everything runs from the `cache` test image (Debian's docker-registry).
 *
 * What a registry served is read back from its log: distribution logs one
 * `msg="response completed"` line per request, with `http.response.written=<bytes>`.
 */
import type { Engine } from "./engine.ts";
import { docker } from "./images.ts";
import { recordCreated } from "./ledger.ts";

export interface Registry {
  /** Container name (unique per run). */
  name: string;
  /** The network it was started on, and its DNS name there. */
  network: string;
  alias: string;
  /** `http://<alias>:5000`: its address for containers on `network`. */
  url: string;
  /** The loopback port it is published on; null when not published. */
  port: number | null;
}

export interface Upstream extends Registry {
  /** The test image as a Docker Hub name (`devpod-test/tiny:1`): what machines pull. */
  ref: string;
  /** Its manifest digest (`sha256:…`). */
  digest: string;
  /** Bytes of its blobs (layers and config): what one full pull transfers. */
  blobBytes: number;
}

export interface RegistryOptions {
  /** The registry image (images.cache). */
  image: string;
  name: string;
  network: string;
  alias: string;
  /** Pull-through mode: the remote it proxies (REGISTRY_PROXY_REMOTEURL). */
  proxy?: string;
  /** Publish :5000 on a free 127.0.0.1 port. */
  publish?: boolean;
  labels?: Record<string, string>;
}

const PORT = 5000;

function must(what: string, r: { code: number; stdout: string; stderr: string }) {
  if (r.code !== 0) {
    throw new Error(`${what} failed: ${(r.stderr || r.stdout).trim().slice(-1500)}`);
  }
  return r.stdout;
}

/** Waits (bounded) until `GET /v2/` answers on the published port. */
async function answers(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`, {
        signal: AbortSignal.timeout(2000),
      });
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`registry on 127.0.0.1:${port} did not answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a registry (plain, or a pull-through cache of `proxy`) on `network`. */
export async function startRegistry(engine: Engine, o: RegistryOptions): Promise<Registry> {
  const args = ["run", "-d", "--name", o.name, "--network", o.network, "--network-alias", o.alias];
  for (const [k, v] of Object.entries(o.labels ?? {})) args.push("--label", `${k}=${v}`);
  if (o.publish) args.push("-p", `127.0.0.1::${PORT}`);
  if (o.proxy) args.push("-e", `REGISTRY_PROXY_REMOTEURL=${o.proxy}`);
  await recordCreated("container", o.name, engine.host);
  must(`docker run ${o.name}`, await docker(engine, [...args, o.image]));
  let port: number | null = null;
  if (o.publish) {
    const out = must("docker port", await docker(engine, ["port", o.name, `${PORT}/tcp`]));
    const m = /127\.0\.0\.1:(\d+)/.exec(out);
    if (!m) throw new Error(`${o.name}: no loopback port in ${JSON.stringify(out)}`);
    port = Number(m[1]);
    await answers(port);
  }
  return {
    name: o.name,
    network: o.network,
    alias: o.alias,
    url: `http://${o.alias}:${PORT}`,
    port,
  };
}

/**
 * Starts the upstream: a plain registry on `network` (alias `alias`) published on
 * loopback, with `source` (a local image, e.g. images.tiny) pushed into it as `ref`.
 */
export async function startUpstream(
  engine: Engine,
  o: Omit<RegistryOptions, "proxy" | "publish"> & { source: string; ref?: string },
): Promise<Upstream> {
  const ref = o.ref ?? "devpod-test/tiny:1";
  const reg = await startRegistry(engine, { ...o, publish: true });
  try {
    const { digest, blobBytes } = await pushImage(engine, reg, o.source, ref);
    return { ...reg, ref, digest, blobBytes };
  } catch (e) {
    await removeRegistry(engine, reg);
    throw e;
  }
}

/** Pushes local image `source` into `reg` as `ref` (over its loopback port). */
export async function pushImage(
  engine: Engine,
  reg: Registry,
  source: string,
  ref: string,
): Promise<{ digest: string; blobBytes: number }> {
  if (reg.port === null) throw new Error(`${reg.name} is not published: cannot push into it`);
  // 127.0.0.0/8 is an insecure registry to every dockerd: plain HTTP, no flags needed.
  const local = `127.0.0.1:${reg.port}/${ref}`;
  must("docker tag", await docker(engine, ["tag", source, local]));
  try {
    must(`docker push ${local}`, await docker(engine, ["push", local], { timeoutMs: 120_000 }));
  } finally {
    await docker(engine, ["rmi", local]);
  }
  const [repo, tag] = ref.split(":");
  const res = await fetch(`http://127.0.0.1:${reg.port}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`${reg.name}: manifest of ${ref}: HTTP ${res.status}`);
  const digest = res.headers.get("docker-content-digest") ?? "";
  const manifest = await res.json() as {
    config: { size: number };
    layers: { size: number }[];
  };
  const blobBytes = manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
  return { digest, blobBytes };
}

/** One request a registry answered, from its log. */
export interface Served {
  method: string;
  uri: string;
  status: number;
  written: number;
}

const FIELD = (name: string) => new RegExp(`\\b${name}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`);
function field(line: string, name: string): string | null {
  const m = FIELD(name).exec(line);
  if (!m) return null;
  return m[1].startsWith('"') ? m[1].slice(1, -1) : m[1];
}

/** Parses distribution's "response completed" lines (the access log's twins are skipped). */
export function parseServed(log: string): Served[] {
  const out: Served[] = [];
  for (const line of log.split("\n")) {
    if (!line.includes('msg="response completed"')) continue;
    const method = field(line, "http.request.method");
    const uri = field(line, "http.request.uri");
    const status = field(line, "http.response.status");
    const written = field(line, "http.response.written");
    if (!method || !uri || !status || written === null) continue;
    out.push({ method, uri, status: Number(status), written: Number(written) });
  }
  return out;
}

export interface ServedSummary {
  requests: Served[];
  /** Bytes of blobs sent (GET …/blobs/… answered 200). */
  blobBytes: number;
  blobGets: number;
  /** Manifest requests (HEAD or GET), by tag or digest. */
  manifestRequests: number;
}

export function summarize(requests: Served[]): ServedSummary {
  const blobs = requests.filter((r) =>
    r.method === "GET" && r.status === 200 && r.uri.includes("/blobs/")
  );
  return {
    requests,
    blobBytes: blobs.reduce((n, r) => n + r.written, 0),
    blobGets: blobs.length,
    manifestRequests: requests.filter((r) => r.uri.includes("/manifests/")).length,
  };
}

/**
 * What `reg` served so far (its whole log; a stopped container's log stays readable).
 * Pass an earlier summary as `since` for the difference.
 */
export async function served(
  engine: Engine,
  reg: Pick<Registry, "name">,
  since?: ServedSummary,
): Promise<ServedSummary> {
  const r = await docker(engine, ["logs", reg.name]);
  must(`docker logs ${reg.name}`, r);
  const all = parseServed(r.stdout + "\n" + r.stderr);
  // Log lines keep their order: the first `since.requests.length` are the old ones.
  return summarize(since ? all.slice(since.requests.length) : all);
}

/** Attaches `reg` to one more network, under `alias`. */
export async function connectRegistry(
  engine: Engine,
  reg: Registry,
  network: string,
  alias = reg.alias,
): Promise<void> {
  must(
    `docker network connect ${network}`,
    await docker(engine, ["network", "connect", "--alias", alias, network, reg.name]),
  );
}

/** Stops `reg` (its log and storage stay) within a few seconds. */
export async function stopRegistry(engine: Engine, reg: Registry): Promise<void> {
  must(`docker stop ${reg.name}`, await docker(engine, ["stop", "-t", "3", reg.name]));
}

/** Removes `reg` and its anonymous storage volume; never throws (for finally blocks). */
export async function removeRegistry(engine: Engine, reg: Pick<Registry, "name">): Promise<void> {
  await docker(engine, ["rm", "-f", "-v", reg.name]).catch(() => {});
}
