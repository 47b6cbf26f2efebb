/**
 * The server's agent cache (machine/agent_cache.sh: nginx and its fetch loop) and the
 * machine's curl wrapper (machine/agent_curl.sh), run for real on the host against a
 * stand-in for GitHub's release downloads on loopback. What they must do: fetch a
 * release once and serve it to every later machine, never serve bytes that differ from
 * what the release publishes or from the first fetch, take a seed with no upstream, and
 * leave the machine DevPod's own download whenever they cannot serve.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { releasePath, releaseUrl, servedPathPattern } from "../../lib/agent/line.ts";
import { freePort, hasTool, sleep, within } from "./harness.ts";

const SCRIPT = new URL("../../machine/agent_cache.sh", import.meta.url).pathname;
const WRAPPER = new URL("../../machine/agent_curl.sh", import.meta.url).pathname;
const V15 = { line: "loft-sh", version: "v0.6.15", arch: "amd64" } as const;

async function skip(): Promise<string | undefined> {
  for (const tool of ["nginx", "curl", "sha256sum", "setsid"]) {
    if (!(await hasTool(tool))) return `needs ${tool} on PATH`;
  }
  return undefined;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** GitHub's release downloads, on loopback: path → bytes; counts binary downloads. */
function upstream() {
  const files = new Map<string, Uint8Array<ArrayBuffer>>();
  const gets: string[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      gets.push(path);
      const body = files.get(path);
      return body ? new Response(body) : new Response("Not Found", { status: 404 });
    },
  );
  return {
    files,
    gets,
    url: `http://127.0.0.1:${server.addr.port}`,
    async publish(path: string, bytes: Uint8Array<ArrayBuffer>, checksum?: string) {
      files.set(path, bytes);
      const dir = path.slice(0, path.lastIndexOf("/"));
      const name = path.slice(path.lastIndexOf("/") + 1);
      if (checksum !== undefined) {
        const sum = checksum || await sha256(bytes);
        files.set(`${dir}/checksums.txt`, new TextEncoder().encode(`${sum}  ${name}\n`));
      }
    },
    stop: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

/** The cache, as its container runs it, in a session of its own (nginx and tail die with it). */
async function startCache(upstreamUrl: string) {
  const dir = await Deno.makeTempDir({ prefix: "devpod-agents-test-" });
  await Deno.chmod(dir, 0o755); // nginx's workers (nobody) read the store
  const store = join(dir, "store");
  const port = freePort();
  const child = new Deno.Command("setsid", {
    args: ["sh", SCRIPT],
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      DEVPOD_AGENT_UPSTREAM: upstreamUrl,
      DEVPOD_AGENT_STORE: store,
      DEVPOD_AGENT_RUN: join(dir, "run"),
      DEVPOD_AGENT_PORT: String(port),
      DEVPOD_AGENT_PATHS: servedPathPattern(),
      DEVPOD_AGENT_FAILED_SECONDS: "1",
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) log += dec.decode(c);
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  await within(
    10_000,
    "the agent cache listens",
    (async () => {
      while (!log.includes("devpod-agents serving")) await sleep(50);
      for (;;) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return;
        } catch {
          await sleep(50);
        }
      }
    })(),
  );
  return {
    address: `127.0.0.1:${port}`,
    store,
    log: () => log,
    async stop() {
      await new Deno.Command("kill", { args: ["-TERM", "--", `-${child.pid}`] }).output();
      await within(10_000, "the agent cache stops", Promise.all([child.status, pumped]));
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** DevPod's inject script's download, through the wrapper, as on a machine with the cache. */
async function injectDownload(cacheAddress: string, url: string, out: string) {
  const r = await within(
    60_000,
    `download of ${url}`,
    new Deno.Command("sh", {
      // The timeouts keep the fallback to github.com short here (no route out).
      args: [WRAPPER, "-fsSL", "--connect-timeout", "2", "--max-time", "10", url, "-o", out],
      env: { DEVPOD_AGENT_CACHE: cacheAddress, DEVPOD_AGENT_PATHS: servedPathPattern() },
      stdout: "piped",
      stderr: "piped",
    }).output(),
  );
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
}

async function fileSha(path: string): Promise<string | null> {
  try {
    return await sha256(await Deno.readFile(path));
  } catch {
    return null;
  }
}

type Up = ReturnType<typeof upstream>;
type Cache = Awaited<ReturnType<typeof startCache>>;

/** A stand-in, set up by `prepare`, a cache in front of it and a scratch dir; all gone after. */
async function scenario(
  prepare: (up: Up) => Promise<void>,
  body: (up: Up, cache: Cache, out: string) => Promise<void>,
) {
  const up = upstream();
  await prepare(up);
  const cache = await startCache(up.url);
  const out = await Deno.makeTempDir();
  try {
    await body(up, cache, out);
  } finally {
    await cache.stop();
    await up.stop().catch(() => {});
    await Deno.remove(out, { recursive: true });
  }
}

const reason = await skip();

Deno.test({
  name:
    "agent cache: fetched once from the release, verified against its checksums.txt, served to the next machine with the upstream gone",
  ignore: reason !== undefined,
  async fn() {
    const agent = randomBytes(3 * 1024 * 1024);
    await scenario((up) => up.publish(releasePath(V15), agent, ""), async (up, cache, out) => {
      const first = await injectDownload(cache.address, releaseUrl(V15), join(out, "a"));
      assert(first.code === 0, first.stderr + cache.log());
      assert((await fileSha(join(out, "a"))) === await sha256(agent));
      assert(cache.log().includes("(matches the release's published sha256)"), cache.log());
      await up.stop();
      const next = await injectDownload(cache.address, releaseUrl(V15), join(out, "b"));
      assert(next.code === 0, next.stderr);
      assert((await fileSha(join(out, "b"))) === await sha256(agent));
      const binaryGets = up.gets.filter((p) => p === releasePath(V15));
      assert(binaryGets.length === 1, `the upstream sent the agent ${binaryGets.length} times`);
    });
  },
});

Deno.test({
  name:
    "agent cache: bytes that are not what the release publishes are refused; the machine falls back to DevPod's own download",
  ignore: reason !== undefined,
  async fn() {
    const v16 = { ...V15, version: "v0.6.16" } as const;
    const tampered = (up: Up) => up.publish(releasePath(v16), randomBytes(1 << 20), "0".repeat(64));
    await scenario(tampered, async (_up, cache, out) => {
      const r = await injectDownload(cache.address, releaseUrl(v16), join(out, "a"));
      assert(r.code !== 0, "github.com is not reachable here: the fallback must fail");
      assert(r.stderr.includes(`downloading ${releaseUrl(v16)} as DevPod would`), r.stderr);
      assert(/refused: sha256 \S+ of \S+ is not the 0{64} the release publishes/.test(cache.log()));
      assert((await fileSha(join(cache.store, "files", releasePath(v16)))) === null);
    });
  },
});

Deno.test({
  name:
    "agent cache: with no published checksum the first fetch is recorded, and a different one later is refused",
  ignore: reason !== undefined,
  async fn() {
    const devsy = { line: "devsy", version: "v1.1.0", arch: "arm64" } as const;
    const original = (up: Up) => up.publish(releasePath(devsy), randomBytes(512 * 1024));
    await scenario(original, async (up, cache, out) => {
      const first = await injectDownload(cache.address, releaseUrl(devsy), join(out, "a"));
      assert(first.code === 0, first.stderr + cache.log());
      assert(cache.log().includes("first fetch recorded"), cache.log());
      // The stored copy is lost (a volume restored from elsewhere, say) and the release
      // now sends other bytes: the record refuses them.
      await Deno.remove(join(cache.store, "files", releasePath(devsy)));
      await up.publish(releasePath(devsy), randomBytes(512 * 1024));
      const again = await injectDownload(cache.address, releaseUrl(devsy), join(out, "b"));
      assert(again.code !== 0);
      assert(cache.log().includes("differs from the first fetch recorded"), cache.log());
    });
  },
});

Deno.test({
  name:
    "agent cache: an air-gapped server serves a seeded release (no upstream at all); a down cache costs the machine nothing",
  ignore: reason !== undefined,
  async fn() {
    const sk = { line: "skevetter", version: "v0.26.1", arch: "amd64" } as const;
    // Nothing answers where the upstream was.
    await scenario((up) => up.stop(), async (up, cache, out) => {
      const seed = randomBytes(256 * 1024);
      const seeded = join(cache.store, "seed", releasePath(sk));
      await Deno.mkdir(seeded.slice(0, seeded.lastIndexOf("/")), { recursive: true });
      await Deno.writeFile(seeded, seed);
      const r = await injectDownload(cache.address, releaseUrl(sk), join(out, "a"));
      assert(r.code === 0, r.stderr);
      assert((await fileSha(join(out, "a"))) === await sha256(seed));
      assert(/stored \S+ from seed/.test(cache.log()), cache.log());

      const t0 = performance.now();
      const down = await injectDownload(`127.0.0.1:${freePort()}`, releaseUrl(sk), join(out, "b"));
      assert(down.stderr.includes("as DevPod would"), down.stderr);
      assert(performance.now() - t0 < 15_000);
      // Not a release URL the cache serves (a mirror, AGENT_URL): curl as it was called.
      const mirror = `${up.url}/mirror/devpod-linux-amd64`;
      const other = await injectDownload(cache.address, mirror, join(out, "c"));
      assert(!other.stderr.includes("agent cache"), other.stderr);
    });
  },
});
