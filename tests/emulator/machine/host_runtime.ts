/**
 * The "host" machine runtime: each machine is a process tree in its own mount + PID
 * namespace on this host, running a real sshd on 127.0.0.1:<published port> as user
 * `devpod`, with its home volume bind-mounted onto /home/devpod.
 *
 * Other compose services (the image cache's `registry`) are recorded, not run: a
 * container row that is running after up, exited after stop. Networks are bookkept per
 * server as docker does: up creates the project's networks and fails on a missing
 * external one; down removes them unless another app's running container uses one.
 */
import {
  type MachineSpec,
  type ProjectSpec,
  projectSpec,
  type ServiceSpec,
} from "../compose_spec.ts";
import {
  ensureHost,
  type HostUser,
  MACHINE_ETC,
  MACHINE_HOME,
  MACHINE_USER,
} from "./host_setup.ts";
import {
  freezeTree,
  LOG_WRAPPER,
  MAX_RESTARTS,
  namespaceInit,
  RESTART_DELAY_MS,
  restartWanted,
  settlesWithin,
  signal,
  thawTree,
} from "./process.ts";
import {
  codeDir,
  type ComposeApp,
  type ContainerRow,
  MachineError,
  type MachineRuntime,
  type MachineView,
  type NetworkView,
  SERVER_PATH,
} from "./runtime.ts";
import { renderSshdConfig } from "./sshd_config.ts";
import {
  type EngineContainer,
  HostDockerCli,
  serveHostDocker,
  writeDockerWrapper,
} from "./host_docker.ts";
import { ServiceProcess } from "./host_service.ts";

export interface HostRuntimeOptions {
  dataDir: string;
  /** Grace period of `stop` before SIGKILL (docker's default: 10 s). */
  stopGraceMs?: number;
}

type ContainerState = "created" | "running" | "exited";

interface ContainerInfo {
  /** 64 hex chars; `docker ps` shows the first 12. */
  containerId: string;
  /** `<appName>-<service>-1`, as docker compose names it. */
  name: string;
  state: ContainerState;
  exitCode: number | null;
  /** Epoch ms of the last start / exit. */
  startedAt: number | null;
  finishedAt: number | null;
  publishedPort: number | null;
  /** Epoch ms it was created (`docker ps` lists the newest first). */
  createdAt: number;
}

interface Container {
  info: ContainerInfo;
  spec: MachineSpec;
  /** The address sshd listens on: its server's (127.0.0.1 on the Dokploy host). */
  address: string;
  /** Its process tree is stopped (SIGSTOP): its server went away (setMachinesDown). */
  frozen: boolean;
  /** Identity of the spec: a changed spec means docker compose recreates the container. */
  specKey: string;
  proc: Deno.ChildProcess | null;
  /** Settles when the current process has exited and its exit was recorded. */
  exited: Promise<void>;
  /** Set by stop/remove/close so the restart policy leaves the machine alone. */
  stopping: boolean;
  restarts: number;
  restartTimer?: ReturnType<typeof setTimeout>;
}

/**
 * A container of a non-machine service: a record with a state, no process, or (a
 * service with `run`, the backup guard) with the process that really runs it.
 */
interface Passive {
  info: ContainerInfo;
  spec: ServiceSpec;
  specKey: string;
  process?: ServiceProcess;
}

interface NetworkRecord {
  name: string;
  /** The compose project that created it; null for `dokploy-network` (Dokploy's own). */
  project: string | null;
}

/** The server key of the Dokploy host itself (a service with no serverId). */
const DOKPLOY_HOST = "dokploy-host";
/** Where the Dokploy host's machines listen (a remote server's listen on its ipAddress). */
const DOKPLOY_HOST_ADDRESS = "127.0.0.1";
/** Made by Dokploy's setup on every server; never removed. */
const DOKPLOY_NETWORK = "dokploy-network";

const CLOSE_GRACE_MS = 2000;
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// PID 1 of the machine namespace until it execs the entrypoint: mount home and config.
// PID 1 ignores signals it has no handler for, hence the trap for an early stop.
const NS_INIT = "trap 'exit 143' TERM; " +
  `mount --bind "$1" ${MACHINE_HOME} && mount --bind "$2" ${MACHINE_ETC} || exit 125; ` +
  'shift 2; exec "$@"';

export class HostRuntime implements MachineRuntime {
  #dataDir: string;
  #stopGraceMs: number;
  /** Machines by appName. */
  #containers = new Map<string, Container>();
  /** Containers of other services by appName, in file order. */
  #passive = new Map<string, Passive[]>();
  /** appName → the server its containers and networks are on. */
  #servers = new Map<string, string>();
  /** server → network name → network. */
  #networks = new Map<string, Map<string, NetworkRecord>>();
  /** Servers whose machines are down (frozen) right now. */
  #down = new Set<string>();
  #locks = new Map<string, Promise<unknown>>();
  #closed = false;
  /** The stand-in `docker` for Dokploy's shell commands, started on first use. */
  #dockerd?: Promise<{ bin: string; socket: string; close(): Promise<void> }>;

  constructor(opts: HostRuntimeOptions) {
    this.#dataDir = opts.dataDir;
    this.#stopGraceMs = opts.stopGraceMs ?? 10_000;
  }

  readonly kind = "host";

  async deploy(app: ComposeApp, log: (line: string) => void): Promise<void> {
    const project = await this.#readProject(app, log);
    await this.#pullAll(project, log);
    await this.#up(app, project, log, { removeOrphans: true });
  }

  async start(app: ComposeApp): Promise<void> {
    const discard = () => {};
    const project = await this.#readProject(app, discard);
    await this.#pullAll(project, discard);
    await this.#up(app, project, discard, { removeOrphans: false });
  }

  /** What `docker compose` reads: the written file, interpolated with the written .env. */
  async #readProject(app: ComposeApp, log: (line: string) => void): Promise<ProjectSpec> {
    const dir = codeDir(app);
    const file = await Deno.readTextFile(`${dir}/docker-compose.yml`);
    const env = await Deno.readTextFile(`${dir}/.env`).catch(() => "");
    const parsed = projectSpec(file, env, app.appName);
    for (const w of parsed.warnings) warn(log, w);
    if (!parsed.ok) throw new MachineError(parsed.error);
    return parsed.project;
  }

  async #pullAll(project: ProjectSpec, log: (line: string) => void): Promise<void> {
    if (project.machine) await this.#pull("machine", project.machine.image, log);
    for (const s of project.services) await this.#pull(s.service, s.image, log);
  }

  #pull(service: string, image: string, log: (line: string) => void): Promise<void> {
    log(` ${service} Pulling`);
    if (image.includes("does-not-exist")) {
      const repo = image.split(":")[0];
      const msg = `pull access denied for ${repo}, repository does not exist or may require ` +
        "'docker login': denied: requested access to the resource is denied";
      log(` ${service} Error ${msg}`);
      return Promise.reject(new MachineError(`Error response from daemon: ${msg}`));
    }
    log(` ${service} Pulled`);
    return Promise.resolve();
  }

  /** `docker compose up -d`: networks, volumes, (orphans,) then the containers. */
  #up(
    app: ComposeApp,
    project: ProjectSpec,
    log: (line: string) => void,
    opts: { removeOrphans: boolean },
  ): Promise<void> {
    const { appName } = project;
    return this.#withLock(appName, async () => {
      if (this.#closed) throw new MachineError("Cannot connect to the Docker daemon");
      const machine = project.machine;
      const user = machine ? await ensureHost() : null;
      const server = this.#servers.get(appName) ?? serverKey(app);
      const address = app.address ?? DOKPLOY_HOST_ADDRESS;
      if (machine && !address.startsWith("127.")) {
        throw new MachineError(
          `emulator: a machine cannot listen on ${address} (server ${server}); give the ` +
            "server a 127.0.0.0/8 ipAddress",
        );
      }
      this.#servers.set(appName, server);
      this.#ensureNetworks(server, project, log);
      for (const v of project.volumes) {
        const dir = this.#volumeDir(appName, v);
        if (!exists(dir)) {
          log(` Volume "${appName}_${v}"  Creating`);
          await Deno.mkdir(dir, { recursive: true });
          log(` Volume "${appName}_${v}"  Created`);
        }
      }
      if (opts.removeOrphans) await this.#removeOrphans(project, log);
      if (machine && user) await this.#upMachine(machine, user, log, address);
      for (const s of project.services) await this.#upPassive(appName, s, log);
    });
  }

  /**
   * compose v2's ensureNetworks (not in swarm mode): an external network must exist on
   * this server; a project network is created unless it exists (then a warning when
   * another project made it).
   */
  #ensureNetworks(server: string, project: ProjectSpec, log: (line: string) => void) {
    const networks = this.#networksOn(server);
    for (const n of project.networks) {
      const existing = networks.get(n.name);
      if (n.external) {
        if (!existing) {
          throw new MachineError(`network ${n.name} declared as external, but could not be found`);
        }
        continue;
      }
      if (existing) {
        if (existing.project === null) {
          warn(
            log,
            `a network with name ${n.name} exists but was not created by compose.\n` +
              "Set `external: true` to use an existing network",
          );
        } else if (existing.project !== project.appName) {
          warn(
            log,
            `a network with name ${n.name} exists but was not created for project ` +
              `"${project.appName}".\nSet \`external: true\` to use an existing network`,
          );
        }
        continue;
      }
      log(` Network ${n.name}  Creating`);
      networks.set(n.name, { name: n.name, project: project.appName });
      log(` Network ${n.name}  Created`);
    }
  }

  /** `--remove-orphans`: containers of services the file no longer has. */
  async #removeOrphans(project: ProjectSpec, log: (line: string) => void) {
    const { appName } = project;
    const c = this.#containers.get(appName);
    if (c && !project.machine) {
      log(` Container ${c.info.name}  Removing`);
      await this.#terminate(c, this.#graceOf(c));
      this.#containers.delete(appName);
      await removeDir(this.#machineDir(appName));
      log(` Container ${c.info.name}  Removed`);
    }
    const keep = new Set(project.services.map((s) => s.service));
    const passive = this.#passive.get(appName) ?? [];
    for (const p of passive.filter((p) => !keep.has(p.spec.service))) {
      log(` Container ${p.info.name}  Removing`);
      await p.process?.stop();
      log(` Container ${p.info.name}  Removed`);
    }
    this.#passive.set(appName, passive.filter((p) => keep.has(p.spec.service)));
  }

  async #upMachine(
    spec: MachineSpec,
    user: HostUser,
    log: (line: string) => void,
    address: string,
  ) {
    const specKey = JSON.stringify(spec);
    const name = containerName(spec.appName, "machine");
    checkCpus(spec);
    let c = this.#containers.get(spec.appName);
    if (c?.specKey === specKey && c.info.state === "running") {
      log(` Container ${name}  Running`);
      return;
    }
    if (c && c.specKey !== specKey) {
      log(` Container ${name}  Recreate`);
      await this.#terminate(c, this.#graceOf(c));
      this.#containers.delete(spec.appName);
      c = undefined;
      await this.#create(spec, address);
      log(` Container ${name}  Recreated`);
    } else if (!c) {
      log(` Container ${name}  Creating`);
      await this.#create(spec, address);
      log(` Container ${name}  Created`);
    }
    c = this.#containers.get(spec.appName)!;
    log(` Container ${name}  Starting`);
    this.#checkPort(c);
    c.restarts = 0;
    await this.#start(c, user);
    log(` Container ${name}  Started`);
  }

  /**
   * A recorded container: created (or recreated when its spec changed), then "running";
   * a service with `run` (the backup guard) really starts.
   */
  async #upPassive(appName: string, spec: ServiceSpec, log: (line: string) => void) {
    const list = this.#passive.get(appName) ?? [];
    this.#passive.set(appName, list);
    const name = containerName(appName, spec.service);
    const specKey = JSON.stringify(spec);
    let p = list.find((x) => x.spec.service === spec.service);
    if (p?.specKey === specKey && p.info.state === "running") {
      log(` Container ${name}  Running`);
      return;
    }
    if (p && p.specKey !== specKey) {
      log(` Container ${name}  Recreate`);
      await p.process?.stop();
      Object.assign(p, { spec, specKey, info: newInfo(name, null), process: undefined });
      log(` Container ${name}  Recreated`);
    } else if (!p) {
      log(` Container ${name}  Creating`);
      p = { spec, specKey, info: newInfo(name, null) };
      list.push(p);
      log(` Container ${name}  Created`);
    }
    log(` Container ${name}  Starting`);
    if (spec.run) {
      p.process ??= await this.#serviceProcess(appName, p);
      await p.process.start();
      if (this.#down.has(this.#servers.get(appName) ?? "")) p.process.freeze(true);
    } else {
      Object.assign(p.info, {
        state: "running",
        exitCode: null,
        startedAt: Date.now(),
        finishedAt: null,
      });
    }
    log(` Container ${name}  Started`);
  }

  /** The process of a run service: its volumes at their targets, its own log. */
  async #serviceProcess(appName: string, p: Passive): Promise<ServiceProcess> {
    const dir = `${this.#machineDir(appName)}/${p.spec.service}`;
    await Deno.mkdir(dir, { recursive: true });
    const mounts = p.spec.volumes.map((v) => ({
      source: this.#volumeDir(appName, v.source),
      target: v.target,
      readOnly: v.readOnly === true,
    }));
    return new ServiceProcess(p.info, p.spec.run!, p.spec.restart, mounts, `${dir}/container.log`);
  }

  /** docker stop's wait: the service's stop_grace_period, else the runtime's default. */
  #graceOf(c: Container): number {
    return c.spec.stopGraceMs ?? this.#stopGraceMs;
  }

  stop({ appName }: ComposeApp): Promise<void> {
    return this.#withLock(appName, async () => {
      const c = this.#containers.get(appName);
      const services = this.#passive.get(appName) ?? [];
      await Promise.all([
        c ? this.#terminate(c, this.#graceOf(c)) : undefined,
        ...services.map((p) => p.process?.stop()),
      ]);
      for (const p of services) {
        // The registry stops on SIGTERM and exits 0.
        if (!p.process && p.info.state === "running") {
          Object.assign(p.info, { state: "exited", exitCode: 0, finishedAt: Date.now() });
        }
      }
    });
  }

  remove(app: ComposeApp, opts: { volumes: boolean }): Promise<void> {
    const { appName } = app;
    return this.#withLock(appName, async () => {
      const c = this.#containers.get(appName);
      await Promise.all([
        c ? this.#terminate(c, this.#graceOf(c)) : undefined,
        ...(this.#passive.get(appName) ?? []).map((p) => p.process?.stop()),
      ]);
      this.#containers.delete(appName);
      this.#passive.delete(appName);
      await removeDir(this.#machineDir(appName));
      // Networks: docker refuses to remove one that a running container still uses.
      const server = this.#servers.get(appName) ?? serverKey(app);
      this.#servers.delete(appName);
      const networks = this.#networksOn(server);
      const refused: string[] = [];
      for (const n of [...networks.values()].filter((n) => n.project === appName)) {
        const user = this.#activeEndpoint(server, n.name);
        if (!user) {
          networks.delete(n.name);
          continue;
        }
        // What compose v2 prints, with a current daemon's wording.
        refused.push(
          `failed to remove network ${n.name}: Error response from daemon: error while ` +
            `removing network: network ${n.name} has active endpoints ` +
            `(name:"${user.name}" id:"${user.containerId.slice(0, 12)}")`,
        );
      }
      if (opts.volumes) {
        for (const v of (await this.view(appName)).volumes) {
          await removeDir(`${this.#volumesRoot()}/${v}`);
        }
      }
      if (refused.length) throw new MachineError(refused.join("\n"));
    });
  }

  containers(appName: string, serverId?: string | null): Promise<ContainerRow[]> {
    if (serverId !== undefined && this.#servers.get(appName) !== serverKey({ serverId })) {
      return Promise.resolve([]);
    }
    const c = this.#containers.get(appName);
    const infos = [
      ...(c ? [c.info] : []),
      ...(this.#passive.get(appName) ?? []).map((p) => p.info),
    ];
    return Promise.resolve(infos.map((info) => ({
      containerId: info.containerId.slice(0, 12),
      name: info.name,
      state: info.state,
      status: dockerStatus(info),
    })));
  }

  /** A machine's log; a recorded container has run nothing, so its log is empty. */
  async logs(container: string, tail: number): Promise<string | null> {
    const c = [...this.#containers.entries()].find(([, c]) =>
      c.info.name.startsWith(container) && c.info.state === "running"
    );
    if (!c) {
      const passive = [...this.#passive.values()].flat().find((p) =>
        p.info.name.startsWith(container) && p.info.state === "running"
      );
      if (!passive?.process) return passive ? "" : null;
      return tailLines(await Deno.readTextFile(passive.process.logPath).catch(() => ""), tail);
    }
    const text = await Deno.readTextFile(`${this.#machineDir(c[0])}/container.log`).catch(() => "");
    return tailLines(text, tail);
  }

  view(appName: string): Promise<MachineView> {
    const machine = this.#containers.get(appName);
    const info = machine?.info ?? this.#passive.get(appName)?.[0]?.info;
    return Promise.resolve({
      state: info?.state ?? "none",
      exitCode: info?.exitCode ?? null,
      publishedPort: info?.publishedPort ?? null,
      publishedAddress: machine?.address ?? null,
      volumes: listDirs(this.#volumesRoot()).filter((n) => n.startsWith(`${appName}_`)),
    });
  }

  networks(): Promise<NetworkView[]> {
    const out: NetworkView[] = [];
    for (const [server, networks] of this.#networks) {
      for (const n of networks.values()) {
        if (n.project === null) continue;
        const serverId = server === DOKPLOY_HOST ? null : server;
        out.push({ name: n.name, serverId, project: n.project });
      }
    }
    return Promise.resolve(out.sort((a, b) => a.name.localeCompare(b.name)));
  }

  volumeDirs(): Promise<string[]> {
    return Promise.resolve(listDirs(this.#volumesRoot()).map((n) => `${this.#volumesRoot()}/${n}`));
  }

  /** Freezes (SIGSTOP) or resumes (SIGCONT) the process trees of a server's machines. */
  async setMachinesDown(serverId: string, down: boolean): Promise<void> {
    if (down) this.#down.add(serverId);
    else this.#down.delete(serverId);
    const apps = [...new Set([...this.#containers.keys(), ...this.#passive.keys()])]
      .filter((a) => this.#servers.get(a) === serverId);
    await Promise.all(apps.map((appName) =>
      this.#withLock(appName, () => {
        const c = this.#containers.get(appName);
        if (c) this.#setFrozen(c, down);
        for (const p of this.#passive.get(appName) ?? []) p.process?.freeze(down);
        return Promise.resolve();
      })
    ));
  }

  liveMachines(): Promise<number> {
    return Promise.resolve([...this.#containers.values()].filter((c) => c.proc).length);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#locks.values()]);
    await Promise.all([
      ...[...this.#containers.values()].map((c) => this.#terminate(c, CLOSE_GRACE_MS)),
      ...[...this.#passive.values()].flat().map((p) => p.process?.stop(CLOSE_GRACE_MS)),
    ]);
    const dockerd = await this.#dockerd?.catch(() => undefined);
    await dockerd?.close();
  }

  // ---- the engine Dokploy's shell commands see (host_docker.ts) ----

  /** PATH with the stand-in `docker` for commands "on" `serverId` (null: the Dokploy host). */
  async commandEnv(serverId: string | null): Promise<Record<string, string>> {
    this.#dockerd ??= this.#startDockerd();
    const { bin, socket } = await this.#dockerd;
    return {
      PATH: `${bin}:${SERVER_PATH}`,
      DOKPLOY_EMULATOR_DOCKER: socket,
      DOKPLOY_EMULATOR_SERVER: serverKey({ serverId }),
    };
  }

  async #startDockerd() {
    // A short path: unix socket paths are limited to 108 bytes.
    const dir = await Deno.makeTempDir({ prefix: "emu-dockerd-" });
    const socket = `${dir}/docker.sock`;
    const bin = `${this.#dataDir}/host-bin`;
    await writeDockerWrapper(bin);
    const server = serveHostDocker(socket, new HostDockerCli(this.#engine()));
    return {
      bin,
      socket,
      close: async () => {
        await server.close();
        await removeDir(dir);
      },
    };
  }

  /** Containers by server, and docker stop / start / rm -f on one of them. */
  #engine() {
    const find = (id: string) => {
      for (const [appName, c] of this.#containers) {
        if (c.info.containerId === id) return { appName, machine: c };
      }
      for (const [appName, list] of this.#passive) {
        const p = list.find((x) => x.info.containerId === id);
        if (p) return { appName, passive: p };
      }
      throw new Error(`No such container: ${id}`);
    };
    return {
      volumesRoot: this.#volumesRoot(),
      containers: (server: string) => this.#engineContainers(server),
      stop: (id: string, graceMs?: number) => {
        const found = find(id);
        return this.#withLock(found.appName, async () => {
          if (found.machine) {
            await this.#terminate(found.machine, graceMs ?? this.#graceOf(found.machine));
          } else if (found.passive?.process) await found.passive.process.stop(graceMs);
          else if (found.passive?.info.state === "running") {
            Object.assign(found.passive.info, {
              state: "exited",
              exitCode: 0,
              finishedAt: Date.now(),
            });
          }
        });
      },
      start: (id: string) => {
        const found = find(id);
        return this.#withLock(found.appName, async () => {
          if (found.machine) {
            if (found.machine.proc) return;
            this.#checkPort(found.machine);
            found.machine.restarts = 0;
            await this.#start(found.machine, await ensureHost());
          } else if (found.passive?.process) await found.passive.process.start();
          else if (found.passive) {
            Object.assign(found.passive.info, {
              state: "running",
              exitCode: null,
              startedAt: Date.now(),
              finishedAt: null,
            });
          }
        });
      },
      remove: (id: string) => {
        const found = find(id);
        return this.#withLock(found.appName, async () => {
          if (found.machine) {
            await this.#terminate(found.machine, 0);
            this.#containers.delete(found.appName);
            await removeDir(`${this.#machineDir(found.appName)}/rootfs`);
          } else if (found.passive) {
            await found.passive.process?.stop(0);
            const list = this.#passive.get(found.appName) ?? [];
            this.#passive.set(found.appName, list.filter((p) => p !== found.passive));
          }
        });
      },
    };
  }

  #engineContainers(server: string): EngineContainer[] {
    const out: EngineContainer[] = [];
    const add = (appName: string, service: string, info: ContainerInfo, spec: {
      image: string;
      labels: Record<string, string>;
      volumes: { source: string; target: string }[];
    }) =>
      out.push({
        id: info.containerId,
        name: info.name,
        image: spec.image,
        state: info.state,
        status: dockerStatus(info),
        labels: {
          ...spec.labels,
          "com.docker.compose.project": appName,
          "com.docker.compose.service": service,
          "com.docker.compose.container-number": "1",
          "com.docker.compose.oneoff": "False",
        },
        mounts: spec.volumes.map((v) => ({
          name: `${appName}_${v.source}`,
          destination: v.target,
        })),
        createdAt: info.createdAt,
      });
    for (const [appName, c] of this.#containers) {
      if (this.#servers.get(appName) === server) add(appName, "machine", c.info, c.spec);
    }
    for (const [appName, list] of this.#passive) {
      if (this.#servers.get(appName) !== server) continue;
      for (const p of list) add(appName, p.spec.service, p.info, p.spec);
    }
    return out;
  }

  // ---- internals ----

  #volumesRoot() {
    return `${this.#dataDir}/volumes`;
  }

  #volumeDir(appName: string, volume: string) {
    return `${this.#volumesRoot()}/${appName}_${volume}`;
  }

  #machineDir(appName: string) {
    return `${this.#dataDir}/machines/${appName}`;
  }

  /** A server's networks; every server has Dokploy's `dokploy-network`. */
  #networksOn(server: string): Map<string, NetworkRecord> {
    let networks = this.#networks.get(server);
    if (!networks) {
      networks = new Map([[DOKPLOY_NETWORK, { name: DOKPLOY_NETWORK, project: null }]]);
      this.#networks.set(server, networks);
    }
    return networks;
  }

  /** A running container on `server` attached to network `name` (docker's endpoint). */
  #activeEndpoint(server: string, name: string): ContainerInfo | undefined {
    const attached = [
      ...[...this.#containers.entries()].map(([appName, c]) => ({ appName, ...c })),
      ...[...this.#passive.entries()].flatMap(([appName, list]) =>
        list.map((p) => ({ appName, ...p }))
      ),
    ];
    return attached.find((c) =>
      this.#servers.get(c.appName) === server && c.info.state === "running" &&
      c.spec.networks.includes(name)
    )?.info;
  }

  /** Serialises operations on one machine (deploy vs start vs stop vs restart). */
  #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    const tail = next.catch(() => {});
    this.#locks.set(key, tail);
    tail.then(() => {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    });
    return next;
  }

  /** Stops or resumes a running machine's whole process tree (not its guard). */
  #setFrozen(c: Container, frozen: boolean) {
    if (c.proc && frozen && !c.frozen) freezeTree(c.proc.pid);
    if (c.proc && !frozen && c.frozen) thawTree(c.proc.pid);
    c.frozen = frozen && c.proc !== null;
  }

  /** A new container: fresh id, fresh container file system, sshd files written. */
  async #create(spec: MachineSpec, address: string): Promise<void> {
    const dir = this.#machineDir(spec.appName);
    await removeDir(`${dir}/rootfs`);
    await Deno.mkdir(`${dir}/rootfs/home`, { recursive: true });
    await writeSshFiles(`${dir}/etc`, spec, address);
    this.#containers.set(spec.appName, {
      info: newInfo(containerName(spec.appName, "machine"), spec.publishedPort),
      spec,
      address,
      frozen: false,
      specKey: JSON.stringify(spec),
      proc: null,
      exited: Promise.resolve(),
      stopping: false,
      restarts: 0,
    });
  }

  /** A published port is taken per address: two servers may publish the same one. */
  #checkPort(c: Container) {
    const port = c.spec.publishedPort;
    const taken =
      [...this.#containers.values()].some((o) =>
        o !== c && o.address === c.address && o.spec.publishedPort === port &&
        (o.proc || o.restartTimer !== undefined)
      ) || !canBind(c.address, port);
    if (taken) {
      throw new MachineError(
        `Error response from daemon: driver failed programming external connectivity on ` +
          `endpoint ${c.info.name} (${c.info.containerId}): Bind for 0.0.0.0:${port} failed: ` +
          "port is already allocated",
      );
    }
  }

  async #start(c: Container, user: HostUser): Promise<void> {
    const appName = c.spec.appName;
    const dir = this.#machineDir(appName);
    const homeVolume = c.spec.volumes.find((v) => v.target === MACHINE_HOME);
    const home = homeVolume ? this.#volumeDir(appName, homeVolume.source) : `${dir}/rootfs/home`;
    await Deno.chown(home, user.uid, user.gid);
    await Deno.chmod(home, 0o755);

    const config = `${MACHINE_ETC}/sshd_config`;
    const entry = entrypointArgv(c.spec, config);
    const logPath = `${dir}/container.log`;
    await Deno.writeTextFile(
      logPath,
      `[emulator] ${new Date().toISOString()} starting ${c.info.name} (${entry.mode})\n`,
      { append: true },
    );
    const proc = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        LOG_WRAPPER,
        "devpod-machine",
        logPath,
        String(Deno.pid),
        "unshare",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "/bin/sh",
        "-c",
        NS_INIT,
        "devpod-machine-init",
        home,
        `${dir}/etc`,
        ...entry.argv,
      ],
      clearEnv: true,
      env: {
        PATH,
        HOME: "/root",
        HOSTNAME: c.info.containerId.slice(0, 12),
        ...c.spec.environment,
        // Supervise mode of machine/bootstrap.sh (see machine/README.md): no system
        // setup, sshd listens on the published port itself, state stays per machine.
        DEVPOD_BOOTSTRAP_MODE: "supervise",
        DEVPOD_SSHD_CONFIG: config,
        DEVPOD_SSH_PORT: String(c.spec.publishedPort),
        DEVPOD_SSHD_PORT: String(c.spec.publishedPort),
        DEVPOD_SSHD_LISTEN: c.address,
        DEVPOD_STATE_DIR: `${dir}/rootfs/run/devpod`,
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true, // own process group, so stop can signal the whole tree
    }).spawn();
    c.proc = proc;
    c.stopping = false;
    Object.assign(c.info, {
      state: "running",
      exitCode: null,
      startedAt: Date.now(),
      finishedAt: null,
    });
    c.exited = proc.status.then((st) => this.#onExit(c, proc, st.code));
    c.frozen = false;
    // Its server is down: it starts as a frozen process, as if it had never come up.
    if (this.#down.has(this.#servers.get(appName) ?? "")) this.#setFrozen(c, true);
  }

  #onExit(c: Container, proc: Deno.ChildProcess, code: number) {
    if (c.proc !== proc) return;
    c.proc = null;
    c.frozen = false;
    signal(-proc.pid, "SIGKILL"); // leftovers of the group, e.g. the guard
    Object.assign(c.info, { state: "exited", exitCode: code, finishedAt: Date.now() });
    if (c.stopping || this.#closed || !restartWanted(c.spec.restart, code)) return;
    if (c.restarts >= MAX_RESTARTS) return;
    c.restartTimer = setTimeout(() => {
      c.restartTimer = undefined;
      this.#withLock(c.spec.appName, async () => {
        const current = this.#containers.get(c.spec.appName) === c;
        if (!current || c.stopping || this.#closed || c.proc) return;
        c.restarts++;
        await this.#start(c, await ensureHost());
      }).catch(() => {});
    }, RESTART_DELAY_MS);
  }

  /** docker stop: SIGTERM to the machine's PID 1, then SIGKILL to the whole group. */
  async #terminate(c: Container, graceMs: number): Promise<void> {
    c.stopping = true;
    clearTimeout(c.restartTimer);
    c.restartTimer = undefined;
    const proc = c.proc;
    if (!proc) return;
    // A frozen machine cannot handle SIGTERM: it resumes first (docker stop would reach it).
    this.#setFrozen(c, false);
    // The spawned pid is unshare; its child is PID 1 of the machine namespace.
    // SIGTERM is repeated because one sent while PID 1 is between exec and installing
    // its handler is lost (a just-started machine); a PID 1 that ignores it waits out
    // the grace period, as with docker.
    const deadline = Date.now() + graceMs;
    let exited = false;
    while (!exited && Date.now() < deadline) {
      signal(namespaceInit(proc.pid) ?? -proc.pid, "SIGTERM");
      exited = await settlesWithin(c.exited, Math.min(250, deadline - Date.now()));
    }
    if (!exited) {
      signal(-proc.pid, "SIGKILL"); // unshare and PID 1: the kernel then kills the namespace
      await c.exited;
    }
  }
}

/** Docker's units.HumanDuration, as in `docker ps` STATUS. */
function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  if (h < 24 * 14) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 60) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 730) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

function dockerStatus(c: ContainerInfo, at = Date.now()): string {
  if (c.state === "running") return `Up ${humanDuration(at - (c.startedAt ?? at))}`;
  if (c.state === "exited") {
    return `Exited (${c.exitCode}) ${humanDuration(at - (c.finishedAt ?? at))} ago`;
  }
  return "Created";
}

function containerName(appName: string, service: string) {
  return `${appName}-${service}-1`;
}

/** A just-created container: fresh 64-hex id, never started. */
function newInfo(name: string, publishedPort: number | null): ContainerInfo {
  const containerId = Array.from(crypto.getRandomValues(new Uint8Array(32)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return {
    containerId,
    name,
    state: "created",
    exitCode: null,
    startedAt: null,
    finishedAt: null,
    publishedPort,
    createdAt: Date.now(),
  };
}

/** The last `tail` lines of a log, each ending in a newline. */
function tailLines(text: string, tail: number): string {
  return text.split("\n").filter(Boolean).slice(-tail).map((l) => `${l}\n`).join("");
}

function serverKey(app: Pick<ComposeApp, "serverId">): string {
  return app.serverId ?? DOKPLOY_HOST;
}

/** A compose warning line as logrus prints it (text format, quotes and newlines escaped). */
function warn(log: (line: string) => void, msg: string) {
  const escaped = msg.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  log(`time="${new Date().toISOString()}" level=warning msg="${escaped}"`);
}

/**
 * What runs as the machine's PID 1. A bootstrap that knows supervise mode (it reads
 * DEVPOD_BOOTSTRAP_MODE / DEVPOD_SSHD_CONFIG) runs as the real machine would run it;
 * anything else is replaced by a plain sshd with the emulator's config.
 */
function entrypointArgv(spec: MachineSpec, config: string): { argv: string[]; mode: string } {
  const argv = [...(spec.entrypoint ?? []), ...(spec.command ?? [])];
  const shell = argv[0]?.split("/").pop() ?? "";
  const isBootstrap = ["sh", "bash", "dash", "ash"].includes(shell) && argv[1] === "-c" &&
    /DEVPOD_(BOOTSTRAP_MODE|SSHD_CONFIG)/.test(argv[2] ?? "");
  if (isBootstrap) {
    const path = argv[0].startsWith("/") && exists(argv[0]) ? argv[0] : "/bin/sh";
    return { argv: [path, "-c", argv[2], ...argv.slice(3)], mode: "bootstrap, supervise mode" };
  }
  return { argv: ["/usr/sbin/sshd", "-D", "-e", "-f", config], mode: "plain sshd fallback" };
}

/** Docker refuses a CPU limit above the host's CPUs when it creates the container. */
function checkCpus(spec: MachineSpec) {
  const host = navigator.hardwareConcurrency;
  if (spec.cpus !== null && spec.cpus > host) {
    throw new MachineError(
      `Error response from daemon: Range of CPUs is from 0.01 to ${host.toFixed(2)}, ` +
        `as there are only ${host} CPUs available`,
    );
  }
}

/** Host key, authorized key and sshd_config, in a root-owned 0755 dir. */
async function writeSshFiles(etc: string, spec: MachineSpec, address: string): Promise<void> {
  await Deno.mkdir(etc, { recursive: true });
  await Deno.chmod(etc, 0o755);
  const hostKey = `${etc}/ssh_host_ed25519_key`;
  await Deno.remove(hostKey).catch(() => {});
  const pem = decodeHostKey(spec.environment.DEVPOD_HOST_KEY_B64);
  if (pem) {
    await Deno.writeTextFile(hostKey, pem, { mode: 0o600 });
  } else {
    // No usable key supplied: make one, as a bootstrap would on first boot.
    const out = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-f", hostKey],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new MachineError(new TextDecoder().decode(out.stderr));
  }
  await Deno.chmod(hostKey, 0o600);
  const authorized = `${etc}/authorized_keys`;
  await Deno.writeTextFile(authorized, `${spec.environment.DEVPOD_AUTHORIZED_KEY ?? ""}\n`);
  await Deno.chmod(authorized, 0o644);
  await Deno.writeTextFile(
    `${etc}/sshd_config`,
    renderSshdConfig({
      listenAddress: address,
      port: spec.publishedPort,
      hostKeyPath: `${MACHINE_ETC}/ssh_host_ed25519_key`,
      authorizedKeysPath: `${MACHINE_ETC}/authorized_keys`,
      user: MACHINE_USER,
    }),
  );
}

function decodeHostKey(b64: string | undefined): string | null {
  if (!b64) return null;
  try {
    const text = atob(b64.replace(/\s+/g, ""));
    if (!text.includes("PRIVATE KEY-----")) return null;
    return text.endsWith("\n") ? text : `${text}\n`;
  } catch {
    return null;
  }
}

function canBind(hostname: string, port: number): boolean {
  try {
    Deno.listen({ hostname, port }).close();
    return true;
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function listDirs(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].filter((e) => e.isDirectory).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function removeDir(path: string) {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}
