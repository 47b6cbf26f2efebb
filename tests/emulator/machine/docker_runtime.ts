/**
 * The real-engine runtime: what Dokploy v0.30.2 runs on its server for a compose
 * service (dokploy-api.md §8), against a real dockerd. Restart policy, named volumes,
 * limits, privileged dind and the bootstrap as PID 1 are the engine's own.
 *
 * Everything this runtime creates carries the compose project label of an app it
 * deployed; close() removes all of it, so a test leaves no container, volume or network.
 */
import type { Engine } from "../../engine/engine.ts";
import { recordCreated } from "../../engine/ledger.ts";
import { run } from "../../engine/run.ts";
import { type ContainerNames, dockerCompose } from "./compose_command.ts";
import {
  codeDir,
  type ComposeApp,
  type ContainerRow,
  MachineError,
  type MachineRuntime,
  type MachineView,
  type NetworkView,
  SERVER_PATH as PATH,
} from "./runtime.ts";

const PROJECT_LABEL = "com.docker.compose.project";
const SERVICE_LABEL = "com.docker.compose.service";
/** Dokploy's format for `docker.getContainersByAppNameMatch`. */
const PS_FORMAT =
  "CONTAINER ID : {{.ID}} | Name: {{.Names}} | State: {{.State}} | Status: {{.Status}}";

export class DockerRuntime implements MachineRuntime {
  readonly kind = "docker";
  #engine: Engine;
  #home: string;
  /** Every project this runtime touched, for snapshots and the final clean-up. */
  #apps = new Set<string>();
  /** appName → the server (serverId, null: the Dokploy host) it was deployed to. */
  #servers = new Map<string, string | null>();
  /** appName → the address its published ports are bound to. */
  #addresses = new Map<string, string>();
  /** Servers whose machines are paused (setMachinesDown). */
  #down = new Set<string>();
  #names: ContainerNames;

  constructor(engine: Engine, opts: { dataDir: string; containerNames?: ContainerNames }) {
    this.#engine = engine;
    this.#home = opts.dataDir;
    this.#names = opts.containerNames ?? "v2";
  }

  /** Bookkeeping of where an app lives; all of them run on the one engine. */
  async #track(app: ComposeApp) {
    // In the run's ledger before anything exists: a run ended by a signal removes it.
    if (!this.#apps.has(app.appName)) {
      await recordCreated("app", app.appName, this.#engine.host);
    }
    this.#apps.add(app.appName);
    this.#servers.set(app.appName, app.serverId ?? null);
    this.#addresses.set(app.appName, app.address ?? "127.0.0.1");
  }

  async deploy(app: ComposeApp, log: (line: string) => void): Promise<void> {
    await this.#track(app);
    // `env -i PATH="$PATH" HOME="$HOME" docker compose -p APP -f docker-compose.yml up -d
    // --build --remove-orphans 2>&1`, from code/.
    const r = await dockerCompose(
      this.#engine,
      ["-p", app.appName, "-f", "docker-compose.yml", "up", "-d", "--build", "--remove-orphans"],
      {
        cwd: codeDir(app),
        env: { PATH, HOME: this.#home },
        hostIp: app.address,
        names: this.#names,
      },
    );
    for (const line of r.output.replace(/\n$/, "").split("\n")) if (line) log(line);
    if (r.code !== 0) throw new MachineError(lastLines(r.output));
    await this.#pauseIfDown(app);
  }

  async start(app: ComposeApp): Promise<void> {
    await this.#track(app);
    const r = await dockerCompose(
      this.#engine,
      ["-p", app.appName, "-f", "docker-compose.yml", "up", "-d"],
      { cwd: codeDir(app), env: { PATH }, hostIp: app.address, names: this.#names },
    );
    if (r.code !== 0) throw new MachineError(lastLines(r.output));
    await this.#pauseIfDown(app);
  }

  /** A machine started on a server that is down does not answer either. */
  async #pauseIfDown(app: ComposeApp) {
    if (app.serverId && this.#down.has(app.serverId)) await this.#pause(app.appName, true);
  }

  async stop(app: ComposeApp): Promise<void> {
    const r = await dockerCompose(this.#engine, ["-p", app.appName, "stop"], {
      cwd: app.dir,
      env: { PATH },
    });
    if (r.code !== 0) throw new MachineError(lastLines(r.output));
  }

  async remove(app: ComposeApp, opts: { volumes: boolean }): Promise<void> {
    // Dokploy ignores every error here; so do we.
    await this.#docker(["network", "disconnect", app.appName, "dokploy-traefik"]);
    await dockerCompose(
      this.#engine,
      ["-p", app.appName, "down", ...(opts.volumes ? ["--volumes"] : [])],
      { cwd: this.#home, env: { PATH } },
    );
  }

  /** Dokploy's parse: lines split on " | ", prefixes dropped; any stderr or error → []. */
  async containers(appName: string, serverId?: string | null): Promise<ContainerRow[]> {
    if (serverId !== undefined && (this.#servers.get(appName) ?? null) !== serverId) return [];
    const r = await this.#docker([
      "ps",
      "-a",
      "--format",
      PS_FORMAT,
      `--filter=label=${PROJECT_LABEL}=${appName}`,
    ]);
    if (r.code !== 0 || r.stderr.trim() || !r.stdout.trim()) return [];
    return parsePs(r.stdout);
  }

  async logs(container: string, tail: number): Promise<string | null> {
    const found = await this.#docker(["ps", "-q", "--filter", `name=^${container}`]);
    const id = found.stdout.split("\n").find(Boolean);
    if (!id) return null;
    const r = await this.#docker(["container", "logs", "--timestamps", "--tail", String(tail), id]);
    return r.stdout + r.stderr;
  }

  async view(appName: string): Promise<MachineView> {
    const ids = await this.#ids(["ps", "-aq"], appName);
    const volumes = await this.#ids(["volume", "ls", "-q"], appName);
    if (!ids.length) {
      return {
        state: "none",
        exitCode: null,
        publishedPort: null,
        publishedAddress: null,
        volumes,
      };
    }
    const r = await this.#docker(["inspect", "--format", "{{json .}}", ids[0]]);
    const info = JSON.parse(r.stdout || "{}");
    const binding = info.NetworkSettings?.Ports?.["22/tcp"]?.[0];
    return {
      state: info.State?.Status ?? "none",
      exitCode: info.State?.Status === "exited" ? info.State.ExitCode : null,
      publishedPort: binding?.HostPort ? Number(binding.HostPort) : null,
      publishedAddress: binding?.HostIp || this.#addresses.get(appName) || null,
      volumes: volumes.sort(),
    };
  }

  async volumeDirs(): Promise<string[]> {
    const dirs: string[] = [];
    for (const app of this.#apps) {
      for (const v of await this.#ids(["volume", "ls", "-q"], app)) {
        const r = await this.#docker(["volume", "inspect", "--format", "{{.Mountpoint}}", v]);
        if (r.code === 0) dirs.push(r.stdout.trim());
      }
    }
    return dirs.sort();
  }

  async networks(): Promise<NetworkView[]> {
    const out: NetworkView[] = [];
    for (const app of this.#apps) {
      for (const name of await this.#ids(["network", "ls", "--format", "{{.Name}}"], app)) {
        out.push({ name, serverId: null, project: app });
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** `docker pause` / `docker unpause` of the running containers of a server's apps. */
  async setMachinesDown(serverId: string, down: boolean): Promise<void> {
    if (down) this.#down.add(serverId);
    else this.#down.delete(serverId);
    for (const [app, server] of this.#servers) {
      if (server === serverId) await this.#pause(app, down);
    }
  }

  async #pause(appName: string, pause: boolean) {
    const ids = await this.#ids(
      ["ps", "-q", "--filter", `status=${pause ? "running" : "paused"}`],
      appName,
    );
    if (ids.length) await this.#docker([pause ? "pause" : "unpause", ...ids]);
  }

  /** Running containers of `machine` services (an image cache's `registry` is none). */
  async liveMachines(): Promise<number> {
    let n = 0;
    for (const app of this.#apps) {
      n += (await this.#ids(["ps", "-q", "--filter", `label=${SERVICE_LABEL}=machine`], app))
        .length;
    }
    return n;
  }

  /** The engine's own CLI first on PATH; every server's commands reach the one engine. */
  commandEnv(_serverId: string | null): Promise<Record<string, string>> {
    const cliDir = this.#engine.cli.includes("/")
      ? this.#engine.cli.slice(0, this.#engine.cli.lastIndexOf("/"))
      : "";
    return Promise.resolve({
      PATH: cliDir ? `${cliDir}:${PATH}` : PATH,
      DOCKER_HOST: this.#engine.host,
    });
  }

  async close(): Promise<void> {
    const down = (appName: string) =>
      dockerCompose(this.#engine, ["-p", appName, "down", "--volumes"], {
        cwd: this.#home,
        env: { PATH },
      });
    const apps = [...this.#apps];
    // A paused container cannot be stopped gracefully: resume it first.
    for (const app of apps) await this.#pause(app, false);
    const first = await Promise.all(apps.map(down));
    // A network another app's container still used (an image cache's, joined by a
    // machine being removed at the same moment) goes once every container is gone.
    for (const [i, r] of first.entries()) if (r.code !== 0) await down(apps[i]);
  }

  async #ids(list: string[], appName: string): Promise<string[]> {
    const r = await this.#docker([...list, "--filter", `label=${PROJECT_LABEL}=${appName}`]);
    return r.code === 0 ? r.stdout.split("\n").filter(Boolean) : [];
  }

  #docker(args: string[]) {
    return run(this.#engine.cli, args, {
      env: { PATH, DOCKER_HOST: this.#engine.host },
      clearEnv: true,
      timeoutMs: 60_000,
    });
  }
}

export function parsePs(text: string): ContainerRow[] {
  return text.split("\n").filter((l) => l.trim()).map((line) => {
    const [id, name, state, status] = line.split(" | ");
    return {
      containerId: id.replace("CONTAINER ID : ", "").trim(),
      name: name.replace("Name: ", "").trim(),
      state: state.replace("State: ", "").trim(),
      status: status.replace("Status: ", "").trim(),
    };
  });
}

function lastLines(text: string, n = 12): string {
  return text.trim().split("\n").slice(-n).join("\n") || "docker compose failed";
}
