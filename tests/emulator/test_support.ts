/** Helpers shared by the emulator's own tests: a tiny API client, keys, ssh, polling. */
import type { Emulator } from "./mod.ts";

export interface ApiResponse {
  status: number;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: unknown;
}

/** Calls a procedure the way a Dokploy client does: GET + query or POST + JSON. */
export async function call(
  emu: Pick<Emulator, "url" | "token">,
  method: "GET" | "POST",
  procedure: string,
  input?: Record<string, unknown>,
  headers: Record<string, string> = { "x-api-key": emu.token },
): Promise<ApiResponse> {
  let url = `${emu.url}/api/${procedure}`;
  const init: RequestInit = { method, headers: { ...headers } };
  if (method === "GET" && input) {
    url += "?" + new URLSearchParams(Object.entries(input).map(([k, v]) => [k, String(v)]));
  } else if (method === "POST") {
    init.headers = { ...headers, "content-type": "application/json" };
    init.body = JSON.stringify(input ?? {});
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // plain text body
  }
  return { status: res.status, body };
}

/** Like `call`, but asserts a 200 and returns the body. */
export async function ok<T = Record<string, unknown>>(
  emu: Pick<Emulator, "url" | "token">,
  method: "GET" | "POST",
  procedure: string,
  input?: Record<string, unknown>,
): Promise<T> {
  const res = await call(emu, method, procedure, input);
  if (res.status !== 200) {
    throw new Error(`${procedure} → ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A port nobody listens on right now (on `hostname`, default 127.0.0.1). */
export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface KeyPair {
  privatePath: string;
  publicKey: string;
  /** The private key file, base64 on one line (what the provider puts in the compose env). */
  privateB64: string;
}

export async function ed25519(dir: string, name: string): Promise<KeyPair> {
  const privatePath = `${dir}/${name}`;
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", "devpod", "-f", privatePath],
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  const privateText = await Deno.readTextFile(privatePath);
  return {
    privatePath,
    publicKey: (await Deno.readTextFile(`${privatePath}.pub`)).trim(),
    privateB64: btoa(privateText),
  };
}

/**
 * A compose file of the provider's shape whose entrypoint is a stand-in bootstrap:
 * in supervise mode the real one runs exactly this sshd (plus a watchdog). `$$` keeps
 * compose from interpolating the shell's own variables.
 */
export function machineCompose(opts: {
  port: number;
  authorizedKey: string;
  script?: string;
  restart?: string;
  image?: string;
  inactivityTimeout?: number;
  /**
   * Networks made by other apps (e.g. an image cache's) that the machine joins besides its
   * own `machine` network, declared `external: true` as the provider does.
   */
  externalNetworks?: string[];
}): string {
  const external = opts.externalNetworks ?? [];
  const script = opts.script ?? 'exec /usr/sbin/sshd -D -e -f "$$DEVPOD_SSHD_CONFIG"';
  return [
    "services:",
    "  machine:",
    `    image: ${opts.image ?? "debian:bookworm-slim"}`,
    `    entrypoint: ["/bin/sh", "-c", ${JSON.stringify(script)}, "devpod-bootstrap"]`,
    "    environment:",
    "      DEVPOD_HOST_KEY_B64: ${DEVPOD_HOST_KEY_B64}",
    `      DEVPOD_AUTHORIZED_KEY: ${JSON.stringify(opts.authorizedKey)}`,
    `      DEVPOD_INACTIVITY_TIMEOUT: "${opts.inactivityTimeout ?? 1800}"`,
    "      DEVPOD_DOCKER_MODE: dind",
    "    ports:",
    `      - ${opts.port}:22`,
    "    volumes:",
    "      - home:/home/devpod",
    "      - docker:/var/lib/docker",
    "    privileged: true",
    `    restart: ${opts.restart ?? "on-failure"}`,
    "    labels:",
    "      devpod.machine: test",
    ...(external.length ? [`    networks: ${JSON.stringify(["machine", ...external])}`] : []),
    "volumes:",
    "  home: {}",
    "  docker: {}",
    ...(external.length
      ? ["networks:", "  machine: {}", ...external.map((n) => `  ${n}: { external: true }`)]
      : []),
    "",
  ].join("\n");
}

/**
 * An image cache of the provider's shape (issue 11): one `registry` service, no ports, a
 * named volume, and a network named after the app (`${APP_NAME}` from Dokploy's `.env`)
 * that it joins under that alias.
 */
export function cacheCompose(opts: { image?: string } = {}): string {
  return [
    "services:",
    "  registry:",
    `    image: ${opts.image ?? "registry:2.8.3"}`,
    '    entrypoint: ["/bin/sh", "-c", "exec registry serve /etc/docker/registry/config.yml", ' +
    '"devpod-image-cache"]',
    "    environment:",
    "      REGISTRY_PROXY_REMOTEURL: https://registry-1.docker.io",
    "      REGISTRY_HTTP_ADDR: 0.0.0.0:5000",
    '      REGISTRY_STORAGE_DELETE_ENABLED: "true"',
    "    volumes:",
    "      - cache:/var/lib/registry",
    "    restart: unless-stopped",
    "    labels:",
    '      dev.devpod.image-cache: "true"',
    "    networks:",
    "      cache:",
    '        aliases: ["${APP_NAME}"]',
    "volumes:",
    "  cache: {}",
    "networks:",
    "  cache:",
    "    name: ${APP_NAME}",
    "",
  ].join("\n");
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command as devpod@<host>:port (host default 127.0.0.1) with a pinned host key. */
export async function ssh(
  port: number,
  clientKey: string,
  knownHosts: string,
  command: string,
  host = "127.0.0.1",
): Promise<SshResult> {
  const out = await new Deno.Command("ssh", {
    args: [
      "-i",
      clientKey,
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=5",
      "-o",
      "IdentitiesOnly=yes",
      "-F",
      "/dev/null",
      "-p",
      String(port),
      `devpod@${host}`,
      command,
    ],
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Pids of live processes whose environment contains `needle` (e.g. "DEVPOD_SSH_PORT=123"). */
export function processesWithEnv(needle: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const env = Deno.readTextFileSync(`/proc/${e.name}/environ`).split("\0");
      if (env.includes(needle)) pids.push(Number(e.name));
    } catch {
      // gone or not readable
    }
  }
  return pids;
}

/** True when the TCP port accepts a connection on `hostname` (default 127.0.0.1). */
export async function listening(port: number, hostname = "127.0.0.1"): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The SSH identification line the server at hostname:port sends first (e.g.
 * "SSH-2.0-OpenSSH_9.2p1 …"), or null when none arrives within `timeoutMs` (nothing
 * listens, or the listener is frozen: the kernel still accepts the connection).
 */
export async function sshBanner(
  hostname: string,
  port: number,
  timeoutMs = 2000,
): Promise<string | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port });
  } catch {
    return null;
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const buf = new Uint8Array(256);
    let text = "";
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.startsWith("SSH-") ? text.split("\r\n")[0].split("\n")[0] : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timeout
    }
  }
}

/**
 * Keys, a free port, a pinned known_hosts and a project: what every machine test needs.
 * `addresses`: the hosts known_hosts pins the host key for (default 127.0.0.1).
 */
export async function machineFixture(
  emu: Emulator,
  keysDir: string,
  projectName: string,
  addresses = ["127.0.0.1"],
) {
  const host = await ed25519(keysDir, "host");
  const client = await ed25519(keysDir, "client");
  const port = freePort();
  const knownHosts = `${keysDir}/known_hosts`;
  await Deno.writeTextFile(
    knownHosts,
    addresses.map((a) => `[${a}]:${port} ${host.publicKey}\n`).join(""),
  );
  const { environment } = await ok<{ environment: { environmentId: string } }>(
    emu,
    "POST",
    "project.create",
    { name: projectName },
  );
  return { host, client, port, knownHosts, environmentId: environment.environmentId };
}
