/**
 * The emulator's Docker seam: what Dokploy does with a compose service once its files
 * are written (dokploy-api.md §8). Two runtimes implement it: the fast host-process one
 * (a real sshd per machine, no Docker) and the real-engine one (Dokploy's own
 * `docker compose` command lines against a real dockerd).
 */

/** A compose service as Dokploy lays it out on the server. */
export interface ComposeApp {
  appName: string;
  /**
   * The server it lives on (null or absent: the Dokploy host). Docker objects are per
   * server: a network made on one is not there for an app on another.
   */
  serverId?: string | null;
  /**
   * The address its published ports listen on: its server's `ipAddress` (a 127.0.0.0/8
   * address), 127.0.0.1 on the Dokploy host (the default).
   */
  address?: string;
  /** `<base>/compose/<appName>`; Dokploy writes `code/docker-compose.yml` and `code/.env`. */
  dir: string;
}

/** The PATH Dokploy's `env -i PATH="$PATH" docker compose …` hands on (a server's default). */
export const SERVER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const codeDir = (app: ComposeApp) => `${app.dir}/code`;

/** One line of `docker ps -a` as Dokploy parses it for `docker.getContainersByAppNameMatch`. */
export interface ContainerRow {
  /** 12 hex chars, as `docker ps` shows it. */
  containerId: string;
  name: string;
  /** docker's {{.State}}: created, restarting, running, removing, paused, exited, dead. */
  state: string;
  /** docker's {{.Status}}, e.g. "Up 3 seconds", "Exited (0) 2 seconds ago". */
  status: string;
}

/** What tests read about one app's machine (the snapshot). */
export interface MachineView {
  state: string | "none";
  exitCode: number | null;
  publishedPort: number | null;
  /** The address the published port listens on (its server's); null without a machine. */
  publishedAddress: string | null;
  /** Volume names of this app, e.g. "<appName>_home". */
  volumes: string[];
}

/** A network some deploy created (`dokploy-network`, made by Dokploy's setup, is not one). */
export interface NetworkView {
  name: string;
  /** The server it exists on; null for the Dokploy host. */
  serverId: string | null;
  /** The compose project (appName) that created it. */
  project: string;
}

/** A failure the way docker reports it; the message goes to the deploy log or a 500. */
export class MachineError extends Error {
  override name = "MachineError";
}

export interface MachineRuntime {
  readonly kind: "host" | "docker";
  /**
   * Deploy: `docker compose -p APP -f docker-compose.yml up -d --build --remove-orphans`
   * from `code/`, output to `log`. Throws a MachineError when the command fails.
   */
  deploy(app: ComposeApp, log: (line: string) => void): Promise<void>;
  /** compose.start: `docker compose -p APP -f docker-compose.yml up -d` from `code/`. */
  start(app: ComposeApp): Promise<void>;
  /** compose.stop: `docker compose -p APP stop` (no file: containers found by label). */
  stop(app: ComposeApp): Promise<void>;
  /**
   * compose.delete: `docker compose -p APP down [--volumes]`; absent things are no error.
   * A network another app's running container still uses stays, and the call then throws
   * (docker's "has active endpoints"; Dokploy ignores it).
   */
  remove(app: ComposeApp, opts: { volumes: boolean }): Promise<void>;
  /**
   * `docker ps -a` filtered by the compose project label, on `serverId` (null: the
   * Dokploy host; absent: wherever the app is); [] when Docker errs.
   */
  containers(appName: string, serverId?: string | null): Promise<ContainerRow[]>;
  /**
   * compose.readLogs: `docker container logs --timestamps --tail N` of the first running
   * (or restarting) container whose name starts with `container`; null when none is.
   */
  logs(container: string, tail: number): Promise<string | null>;
  view(appName: string): Promise<MachineView>;
  /** The directory of every volume this runtime made that still exists, orphans included. */
  volumeDirs(): Promise<string[]>;
  /** Networks created by deploys that still exist (orphans included). */
  networks(): Promise<NetworkView[]>;
  /**
   * A remote server went away (`down`) or came back: its running machines freeze, so they
   * no longer answer, and later resume where they were.
   */
  setMachinesDown(serverId: string, down: boolean): Promise<void>;
  /** How many machines (`machine` services) are running now. */
  liveMachines(): Promise<number>;
  /**
   * The environment (PATH, and what `docker` needs) of a shell command Dokploy runs on
   * `serverId` (null: the Dokploy host), e.g. a volume backup: `docker` there reaches
   * that server's engine and the `ubuntu` image.
   */
  commandEnv(serverId: string | null): Promise<Record<string, string>>;
  /** Stops every machine (the real engine also removes what it made) and waits. */
  close(): Promise<void>;
}
