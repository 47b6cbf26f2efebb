/**
 * The host runtime's `docker` for Dokploy's shell commands (backups and restores): the
 * few command lines Dokploy's scripts run, answered from the host runtime's containers
 * and volume directories in docker's words and exit codes.
 *
 * A stand-in `docker` on the commands' PATH (docker_shim.ts) hands its argv here over a
 * unix socket and prints the answer; for `docker run` it gets back the command to run
 * itself (so its output streams and its exit code is the container's). `docker run`
 * mounts by path substitution: `-v VOL:/volume_data` makes `/volume_data` in the command
 * read `<dataDir>/volumes/VOL` (Dokploy's own commands only name their mount points).
 */
import { fileURLToPath } from "node:url";

/** One container as `docker ps` / `docker inspect` would show it. */
export interface EngineContainer {
  /** 64 hex chars. */
  id: string;
  name: string;
  image: string;
  /** docker's {{.State}}: created, running, exited. */
  state: string;
  /** docker's {{.Status}}, e.g. "Up 3 seconds". */
  status: string;
  labels: Record<string, string>;
  /** Named volumes it mounts (a stopped container still "uses" them). */
  mounts: { name: string; destination: string }[];
  /** Epoch ms it was created: `docker ps` lists the newest first. */
  createdAt: number;
}

/** What the stand-in needs from the host runtime (per server: each has its own engine). */
export interface HostEngine {
  readonly volumesRoot: string;
  containers(server: string): EngineContainer[];
  /** docker stop: SIGTERM, then SIGKILL after `graceMs` (default: the container's). */
  stop(id: string, graceMs?: number): Promise<void>;
  start(id: string): Promise<void>;
  /** docker rm -f: SIGKILL and forget it. */
  remove(id: string): Promise<void>;
}

export interface CliReply {
  code: number;
  stdout: string;
  stderr: string;
}

/** A reply, or (docker run) the argv the stand-in runs with its own stdio. */
export type ShimReply = CliReply | { exec: string[] };

/** Images the host runtime can "run" for Dokploy's scripts: the host itself. */
const RUNNABLE_IMAGES = new Set(["ubuntu", "ubuntu:latest"]);
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const out = (stdout: string): CliReply => ({ code: 0, stdout, stderr: "" });
const fail = (stderr: string, code = 1, stdout = ""): CliReply => ({ code, stdout, stderr });

function usage(command: string, args: string, what: string): CliReply {
  return fail(
    `"docker ${command}" requires at least 1 argument.\nSee 'docker ${command} --help'.\n\n` +
      `Usage:  docker ${command} ${args}\n\n${what}\n`,
  );
}

/** Splits `[--flag[=v] | -f v]… args…`; `valued` names the flags that take a value. */
function parseFlags(argv: string[], valued: Set<string>) {
  const flags: [string, string][] = [];
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (args.length || !a.startsWith("-") || a === "-") {
      args.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (eq > 0) flags.push([name, a.slice(eq + 1)]);
    else if (valued.has(name)) flags.push([name, argv[++i] ?? ""]);
    else flags.push([name, "true"]);
  }
  return { flags, args, has: (...names: string[]) => flags.some(([n]) => names.includes(n)) };
}

/** docker's --filter: same key OR'ed (labels AND'ed), keys AND'ed. */
function matchesFilters(c: EngineContainer, filters: string[]): boolean {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf("=");
    const key = i < 0 ? f : f.slice(0, i);
    byKey.set(key, [...byKey.get(key) ?? [], i < 0 ? "" : f.slice(i + 1)]);
  }
  for (const [key, values] of byKey) {
    const one = (v: string) => {
      switch (key) {
        case "label": {
          const j = v.indexOf("=");
          return j < 0 ? v in c.labels : c.labels[v.slice(0, j)] === v.slice(j + 1);
        }
        case "volume":
          return c.mounts.some((m) => m.name === v || m.destination === v);
        case "name":
          return new RegExp(v).test(c.name);
        case "id":
          return c.id.startsWith(v);
        case "status":
          return c.state === v;
        default:
          return false;
      }
    };
    if (key === "label" ? !values.every(one) : !values.some(one)) return false;
  }
  return true;
}

function labelsText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort().join(",");
}

/** `--format` with docker's placeholders (the ones Dokploy's scripts use, and a few more). */
function formatContainer(c: EngineContainer, format: string): string {
  const fields: Record<string, string> = {
    ID: c.id.slice(0, 12),
    Names: c.name,
    Image: c.image,
    State: c.state,
    Status: c.status,
    Labels: labelsText(c.labels),
    Mounts: c.mounts.map((m) => m.name).join(","),
  };
  return format.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, f) => fields[f] ?? "");
}

/** The stand-in's answer to one `docker …` on `server`. */
export class HostDockerCli {
  constructor(private engine: HostEngine) {}

  async handle(argv: string[], server: string): Promise<ShimReply> {
    const [command = "", ...rest] = argv;
    switch (command) {
      case "ps":
        return this.#ps(rest, server);
      case "stop":
        return await this.#each(rest, server, "stop", "[OPTIONS] CONTAINER [CONTAINER...]");
      case "start":
        return await this.#each(rest, server, "start", "[OPTIONS] CONTAINER [CONTAINER...]");
      case "rm":
        return await this.#rm(rest, server);
      case "volume":
        return this.#volume(rest, server);
      case "run":
        return this.#run(rest);
      default:
        return fail(
          `emulator: the host runtime's docker does not run "docker ${argv.join(" ")}" ` +
            "(only ps, stop, start, rm, run and volume ls/rm/create)\n",
        );
    }
  }

  #find(server: string, ref: string): EngineContainer | undefined {
    const all = this.engine.containers(server);
    return all.find((c) => c.name === ref || c.id === ref) ??
      (ref.length ? all.find((c) => c.id.startsWith(ref)) : undefined);
  }

  #ps(argv: string[], server: string): CliReply {
    const p = parseFlags(argv, new Set(["--filter", "-f", "--format", "-n", "--last"]));
    const filters = p.flags.filter(([n]) => n === "--filter" || n === "-f").map(([, v]) => v);
    const format = p.flags.find(([n]) => n === "--format")?.[1];
    const all = p.has("-a", "--all");
    const list = this.engine.containers(server)
      .filter((c) => all || c.state === "running")
      .filter((c) => matchesFilters(c, filters))
      .sort((a, b) => b.createdAt - a.createdAt);
    if (p.has("-q", "--quiet")) return out(list.map((c) => `${c.id.slice(0, 12)}\n`).join(""));
    if (format) return out(list.map((c) => `${formatContainer(c, format)}\n`).join(""));
    const rows = [["CONTAINER ID", "IMAGE", "STATUS", "NAMES"]]
      .concat(list.map((c) => [c.id.slice(0, 12), c.image, c.status, c.name]));
    return out(rows.map((r) => r.join("   ")).join("\n") + "\n");
  }

  /** docker stop / start: each container in turn; a missing one fails the call at the end. */
  async #each(argv: string[], server: string, command: "stop" | "start", args: string) {
    const p = parseFlags(argv, new Set(["-t", "--time", "-s", "--signal"]));
    if (!p.args.length) {
      return usage(
        command,
        args,
        command === "stop"
          ? "Stop one or more running containers"
          : "Start one or more stopped containers",
      );
    }
    const time = p.flags.find(([n]) => n === "-t" || n === "--time")?.[1];
    let stdout = "";
    let stderr = "";
    for (const ref of p.args) {
      const c = this.#find(server, ref);
      if (!c) {
        stderr += `Error response from daemon: No such container: ${ref}\n`;
        continue;
      }
      if (command === "stop") await this.engine.stop(c.id, time ? Number(time) * 1000 : undefined);
      else await this.engine.start(c.id);
      stdout += `${ref}\n`;
    }
    return { code: stderr ? 1 : 0, stdout, stderr };
  }

  async #rm(argv: string[], server: string): Promise<CliReply> {
    const p = parseFlags(argv, new Set());
    if (!p.args.length) {
      return usage("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers");
    }
    const force = p.has("-f", "--force");
    let stdout = "";
    let stderr = "";
    for (const ref of p.args) {
      const c = this.#find(server, ref);
      if (!c) {
        // docker ≥ 23: `rm -f` of a missing container is no error.
        if (!force) stderr += `Error response from daemon: No such container: ${ref}\n`;
        continue;
      }
      if (c.state === "running" && !force) {
        stderr += `Error response from daemon: cannot remove container "/${c.name}": ` +
          "container is running: stop the container before removing or force remove\n";
        continue;
      }
      await this.engine.remove(c.id);
      stdout += `${ref}\n`;
    }
    return { code: stderr ? 1 : 0, stdout, stderr };
  }

  #volumes(): string[] {
    try {
      return [...Deno.readDirSync(this.engine.volumesRoot)].filter((e) => e.isDirectory)
        .map((e) => e.name).sort();
    } catch {
      return [];
    }
  }

  #volume(argv: string[], server: string): CliReply {
    const [sub = "", ...rest] = argv;
    const p = parseFlags(rest, new Set(["--filter", "-f", "--format"]));
    if (sub === "ls") {
      const filters = p.flags.filter(([n]) => n === "--filter" || n === "-f").map(([, v]) => v);
      const names = this.#volumes().filter((name) =>
        filters.every((f) => !f.startsWith("name=") || new RegExp(f.slice(5)).test(name))
      );
      if (p.has("-q", "--quiet")) return out(names.map((n) => `${n}\n`).join(""));
      return out(
        ["DRIVER    VOLUME NAME", ...names.map((n) => `local     ${n}`)].join("\n") + "\n",
      );
    }
    if (sub === "create") {
      const name = p.args[0];
      if (!name || !VOLUME_NAME.test(name)) return fail(`invalid volume name "${name ?? ""}"\n`);
      Deno.mkdirSync(`${this.engine.volumesRoot}/${name}`, { recursive: true });
      return out(`${name}\n`);
    }
    if (sub === "rm") {
      const force = p.has("-f", "--force");
      let stdout = "";
      let stderr = "";
      for (const name of p.args) {
        if (!this.#volumes().includes(name)) {
          if (force) stdout += `${name}\n`;
          else stderr += `Error response from daemon: get ${name}: no such volume\n`;
          continue;
        }
        const users = this.engine.containers(server).filter((c) =>
          c.mounts.some((m) => m.name === name)
        );
        if (users.length) {
          stderr += `Error response from daemon: remove ${name}: volume is in use - [${
            users.map((c) => c.id).join(", ")
          }]\n`;
          continue;
        }
        Deno.removeSync(`${this.engine.volumesRoot}/${name}`, { recursive: true });
        stdout += `${name}\n`;
      }
      return { code: stderr ? 1 : 0, stdout, stderr };
    }
    return fail(`emulator: the host runtime's docker has no "docker volume ${sub}"\n`);
  }

  /** `docker run [--rm] [-v SRC:DST[:ro]]… IMAGE CMD…`: the host runs CMD, paths mapped. */
  #run(argv: string[]): ShimReply {
    const p = parseFlags(argv, new Set(["-v", "--volume", "--name", "-e", "--env", "-w"]));
    const [image, ...command] = p.args;
    if (!image) {
      return usage(
        "run",
        "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        "Create and run a new container from an image",
      );
    }
    if (!RUNNABLE_IMAGES.has(image)) {
      const repo = image.split(":")[0];
      return fail(
        `Unable to find image '${image.includes(":") ? image : `${image}:latest`}' locally\n` +
          `docker: Error response from daemon: pull access denied for ${repo}, repository does ` +
          "not exist or may require 'docker login': denied: requested access to the resource " +
          "is denied.\nSee 'docker run --help'.\n",
        125,
      );
    }
    const mounts: { source: string; target: string }[] = [];
    for (const [name, value] of p.flags) {
      if (name !== "-v" && name !== "--volume") continue;
      const [src, target] = value.split(":");
      if (!src || !target) return fail(`docker: invalid spec: ${value}.\n`, 125);
      let source = src;
      if (!src.startsWith("/")) {
        if (!VOLUME_NAME.test(src)) {
          return fail(
            `docker: Error response from daemon: create ${src}: "${src}" includes invalid ` +
              'characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are ' +
              "allowed.\nSee 'docker run --help'.\n",
            125,
          );
        }
        source = `${this.engine.volumesRoot}/${src}`;
      }
      Deno.mkdirSync(source, { recursive: true }); // a named volume, or a bind source, is made
      mounts.push({ source, target });
    }
    if (!command.length) return fail("emulator: docker run without a command\n", 125);
    const mapped = command.map((arg) =>
      mounts.reduce(
        (text, m) =>
          text.replace(
            new RegExp(`(^|[\\s"'=:])${escapeRegExp(m.target)}(?=$|[\\s/"'])`, "g"),
            `$1${m.source}`,
          ),
        arg,
      )
    );
    return { exec: mapped };
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Serves the stand-in on a unix socket: one JSON request line, one JSON reply line. */
export function serveHostDocker(path: string, cli: HostDockerCli): { close(): Promise<void> } {
  const listener = Deno.listen({ transport: "unix", path });
  const conns = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const task = answer(conn, cli).finally(() => conns.delete(task));
      conns.add(task);
    }
  })().catch(() => {});
  return {
    close: async () => {
      listener.close();
      await loop;
      await Promise.allSettled([...conns]);
      await Deno.remove(path).catch(() => {});
    },
  };
}

async function answer(conn: Deno.UnixConn, cli: HostDockerCli): Promise<void> {
  try {
    let text = "";
    const buf = new Uint8Array(64 * 1024);
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const req = JSON.parse(text) as { argv: string[]; server: string };
    let reply: ShimReply;
    try {
      reply = await cli.handle(req.argv, req.server);
    } catch (e) {
      reply = fail(`Error response from daemon: ${(e as Error).message}\n`);
    }
    const data = new TextEncoder().encode(`${JSON.stringify(reply)}\n`);
    for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
  } catch {
    // the stand-in went away
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

/** The stand-in's entry point, for the `docker` wrapper script. */
export const SHIM = fileURLToPath(new URL("./docker_shim.ts", import.meta.url));

/** A `docker` on PATH that runs the stand-in (deno, no config: starts in ~50 ms). */
export async function writeDockerWrapper(binDir: string): Promise<void> {
  await Deno.mkdir(binDir, { recursive: true });
  const denoDir = Deno.env.get("DENO_DIR") ??
    `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  await Deno.writeTextFile(
    `${binDir}/docker`,
    `#!/bin/sh\n# The host runtime's docker (tests/emulator/machine/host_docker.ts).\n` +
      `DENO_DIR=${q(denoDir)} NO_COLOR=1 exec ${q(Deno.execPath())} run --allow-all --quiet ` +
      `--no-config --no-lock ${q(SHIM)} "$@"\n`,
    { mode: 0o755 },
  );
}
