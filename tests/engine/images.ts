/**
 * The images the real-engine tests run, all made here (no registry is reachable):
 *   - base:    the cached debootstrap root fs, imported (a Debian with no sshd);
 *   - machine: the prebuilt machine image, built from machine/Dockerfile on top of base;
 *   - tiny:    busybox and its libraries, for the nested engine to run;
 *   - cache:   Debian's docker-registry (distribution 2.8.2) on base, laid out as the official
 *              `registry` image is, for the image cache (and the tests' "upstream" registry);
 *   - front:   Debian's nginx and curl on base, standing in for `nginx:1.27-alpine` as the
 *              prebuild registry's front and the agent cache (PREBUILD_PROXY_IMAGE): /bin/sh,
 *              cat, curl, sha256sum and `nginx` on PATH;
 *   - ubuntu:  `ubuntu:latest` for Dokploy's volume backup and restore commands (`docker run
 *              ubuntu bash -c "… tar …"`): the base tagged so (bash and GNU tar are in it).
 * Tags carry a hash of their inputs, so a changed Dockerfile or bootstrap rebuilds and an
 * unchanged one is reused from the engine's data root.
 */
import { dirname, join } from "node:path";
import { ensureRootfs } from "../machine/rootfs.ts";
import { type Engine, run, withFileLock } from "./engine.ts";

export interface TestImages {
  base: string;
  machine: string;
  tiny: string;
  cache: string;
  front: string;
  ubuntu: string;
}

const MACHINE_DIR = decodeURIComponent(new URL("../../machine", import.meta.url).pathname);

async function sha(parts: (string | Uint8Array)[]): Promise<string> {
  const enc = new TextEncoder();
  const chunks = parts.map((p) => typeof p === "string" ? enc.encode(p) : p);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function docker(engine: Engine, args: string[], opts: Parameters<typeof run>[2] = {}) {
  return run(engine.cli, args, { ...opts, env: { ...opts.env, DOCKER_HOST: engine.host } });
}

async function hasImage(engine: Engine, tag: string): Promise<boolean> {
  return (await docker(engine, ["image", "inspect", tag])).code === 0;
}

function must(what: string, r: { code: number; stdout: string; stderr: string }) {
  if (r.code !== 0) throw new Error(`${what} failed: ${(r.stderr || r.stdout).slice(-2000)}`);
}

/** `tar -C dir -c . | docker import - tag`, with an optional CMD. */
async function importDir(engine: Engine, dir: string, tag: string, cmd?: string) {
  const script = `tar -C "$1" -c . | "$2" import ${cmd ? `-c '${cmd}'` : ""} - "$3"`;
  await must(
    `docker import ${tag}`,
    await run("sh", ["-c", script, "import", dir, engine.cli, tag], {
      env: { DOCKER_HOST: engine.host, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      timeoutMs: 300_000,
    }),
  );
}

async function baseImage(engine: Engine, log: (l: string) => void): Promise<string> {
  const rootfs = await ensureRootfs(undefined, log);
  const marker = await Deno.readTextFile(join(rootfs, ".devpod-rootfs-complete"));
  const tag = `devpod-test/bookworm:${await sha([marker])}`;
  if (await hasImage(engine, tag)) return tag;
  log(`images: importing the Debian root fs as ${tag}`);
  await importDir(engine, rootfs, tag);
  return tag;
}

/**
 * `docker build` of an image FROM the local base. The build alone uses the host's network,
 * for Debian's package mirror (as debootstrap does); machines never do.
 */
async function buildOnBase(
  engine: Engine,
  tag: string,
  base: string,
  from: { context: string } | { dockerfile: string },
) {
  const stdin = "dockerfile" in from ? new TextEncoder().encode(from.dockerfile) : undefined;
  await must(
    `docker build ${tag}`,
    await docker(engine, [
      "build",
      "--network",
      "host",
      "--build-arg",
      `BASE_IMAGE=${base}`,
      "-t",
      tag,
      "context" in from ? from.context : "-",
    ], { env: { DOCKER_BUILDKIT: "1" }, stdin, timeoutMs: 600_000 }),
  );
}

async function machineImage(engine: Engine, base: string, log: (l: string) => void) {
  const dockerfile = await Deno.readFile(join(MACHINE_DIR, "Dockerfile"));
  const bootstrap = await Deno.readFile(join(MACHINE_DIR, "bootstrap.sh"));
  const tag = `devpod-test/machine:${await sha([base, dockerfile, bootstrap])}`;
  if (await hasImage(engine, tag)) return tag;
  log(`images: building machine/Dockerfile on ${base} as ${tag} (apt runs once)`);
  await buildOnBase(engine, tag, base, { context: MACHINE_DIR });
  return tag;
}

/**
 * The registry image the image cache runs in the tests, standing in for `registry:2.8.3`:
 * what the cache's entrypoint script needs (/bin/sh, du, cut, sleep, a `registry` binary on
 * PATH) and the official image's /etc/docker/registry/config.yml (filesystem storage at
 * /var/lib/registry, http :5000). Debian's package ships its own config (storage under
 * /var/lib/docker-registry), so ours replaces it. policy-rc.d keeps the package's postinst
 * from starting a service in the build.
 */
export const CACHE_DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE}
RUN printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d \\
 && chmod 0755 /usr/sbin/policy-rc.d \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/sbin/policy-rc.d \\
 && ln -s /usr/bin/docker-registry /usr/local/bin/registry \\
 && mkdir -p /etc/docker/registry /var/lib/registry \\
 && printf '%s\\n' 'version: 0.1' 'log:' '  fields:' '    service: registry' 'storage:' \\
      '  cache:' '    blobdescriptor: inmemory' '  filesystem:' '    rootdirectory: /var/lib/registry' \\
      'http:' '  addr: :5000' '  headers:' '    X-Content-Type-Options: [nosniff]' 'health:' \\
      '  storagedriver:' '    enabled: true' '    interval: 10s' '    threshold: 3' \\
      >/etc/docker/registry/config.yml
VOLUME /var/lib/registry
EXPOSE 5000
CMD ["registry", "serve", "/etc/docker/registry/config.yml"]
`;

async function cacheImage(engine: Engine, base: string, log: (l: string) => void) {
  const tag = `devpod-test/registry:${await sha([base, CACHE_DOCKERFILE])}`;
  if (await hasImage(engine, tag)) return tag;
  log(`images: building the registry image (Debian's docker-registry) on ${base} as ${tag}`);
  // No context: the Dockerfile arrives on stdin.
  await buildOnBase(engine, tag, base, { dockerfile: CACHE_DOCKERFILE });
  return tag;
}

/**
 * The stand-in for `nginx:1.27-alpine` (PREBUILD_PROXY_IMAGE): Debian's nginx (1.22, with
 * auth_request as the official image has it), for the prebuild front, and curl with the
 * CA certificates, which the official alpine image has too, for the agent cache
 * (machine/agent_cache.sh). Both write their own configuration, so the package's
 * configuration, logs and service are not used.
 */
export const FRONT_DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE}
RUN printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d \\
 && chmod 0755 /usr/sbin/policy-rc.d \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx curl ca-certificates \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/sbin/policy-rc.d
CMD ["nginx", "-g", "daemon off;"]
`;

async function frontImage(engine: Engine, base: string, log: (l: string) => void) {
  const tag = `devpod-test/nginx:${await sha([base, FRONT_DOCKERFILE])}`;
  if (await hasImage(engine, tag)) return tag;
  log(`images: building the prebuild front image (Debian's nginx) on ${base} as ${tag}`);
  await buildOnBase(engine, tag, base, { dockerfile: FRONT_DOCKERFILE });
  return tag;
}

/** busybox with the shared libraries it links, as the smallest image that runs. */
async function tinyImage(engine: Engine): Promise<string> {
  const busybox = "/bin/busybox";
  const ldd = await run("ldd", [busybox]);
  const libs = [...ldd.stdout.matchAll(/(\/\S+)/g)].map((m) => m[1]);
  const tag = `devpod-test/tiny:${await sha([
    await Deno.readFile(busybox),
    ...libs,
    "all applets",
  ])}`;
  if (await hasImage(engine, tag)) return tag;
  const dir = await Deno.makeTempDir({ prefix: "devpod-tiny-" });
  try {
    await Deno.mkdir(join(dir, "bin"));
    await Deno.copyFile(busybox, join(dir, "bin/busybox"));
    for (const lib of libs) {
      await Deno.mkdir(join(dir, dirname(lib)), { recursive: true });
      await Deno.copyFile(await Deno.realPath(lib), join(dir, lib));
    }
    // Every applet, as the busybox image has them: a real shell environment with no
    // sshd and no package manager.
    const list = await run(busybox, ["--list"]);
    for (const applet of list.stdout.split("\n").filter((a) => a && a !== "busybox")) {
      await Deno.symlink("busybox", join(dir, "bin", applet));
    }
    await importDir(engine, dir, tag, 'CMD ["/bin/sh"]');
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return tag;
}

/**
 * Dokploy's backup script runs `ubuntu` by that name. An `ubuntu:latest` already on the
 * engine (a real one) is left alone; otherwise the base gets the tag.
 */
async function ubuntuImage(engine: Engine, base: string): Promise<string> {
  const tag = "ubuntu:latest";
  if (!(await hasImage(engine, tag))) {
    must(`docker tag ${tag}`, await docker(engine, ["tag", base, tag]));
  }
  return tag;
}

/** Makes (once, whichever test process comes first) and returns the test images. */
export function ensureImages(
  engine: Engine,
  log: (l: string) => void = () => {},
): Promise<TestImages> {
  return withFileLock("images.lock", async () => {
    const base = await baseImage(engine, log);
    const machine = await machineImage(engine, base, log);
    const tiny = await tinyImage(engine);
    const cache = await cacheImage(engine, base, log);
    const front = await frontImage(engine, base, log);
    const ubuntu = await ubuntuImage(engine, base);
    return { base, machine, tiny, cache, front, ubuntu };
  });
}
