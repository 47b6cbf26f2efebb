/**
 * The emulator's stand-in for the Docker engine: runs the `machine` service of a
 * compose file. Kept behind this interface so another runtime (say, a real container
 * engine) can replace the host-process one.
 */
import type { MachineSpec } from "../compose_spec.ts";

export type ContainerState = "created" | "running" | "exited";

export interface ContainerInfo {
  /** 64 hex chars; `docker ps` shows the first 12. */
  containerId: string;
  /** `<appName>-machine-1`, as docker compose names it. */
  name: string;
  appName: string;
  serverId: string | null;
  state: ContainerState;
  exitCode: number | null;
  /** Epoch ms of the last start / exit. */
  startedAt: number | null;
  finishedAt: number | null;
  publishedPort: number;
}

/** A failure the way docker reports it; the message goes to the deploy log or a 500. */
export class MachineError extends Error {
  override name = "MachineError";
}

export interface UpOptions {
  serverId: string | null;
  /** Receives docker-compose-like progress lines. */
  log: (line: string) => void;
}

export interface MachineRuntime {
  /** Fetches the image, or throws a MachineError like a failed `docker pull`. */
  pull(image: string, log: (line: string) => void): Promise<void>;
  /**
   * `docker compose up -d` for one machine: keeps a running container whose spec is
   * unchanged, otherwise (re)creates it and starts it. Resolves once it is started.
   */
  up(spec: MachineSpec, opts: UpOptions): Promise<void>;
  /** `docker compose stop`: SIGTERM, a grace period, then SIGKILL. No-op if absent. */
  stop(appName: string): Promise<void>;
  /** `docker compose down [--volumes]`. No-op if absent. */
  remove(appName: string, opts: { volumes: boolean }): Promise<void>;
  container(appName: string): ContainerInfo | undefined;
  containers(): ContainerInfo[];
  /** Names of the volumes of this app (`<appName>_<volume>`) that exist. */
  volumesOf(appName: string): string[];
  /** Every volume directory on disk, as absolute paths. */
  volumeDirs(): string[];
  /** How many machine process groups are alive. */
  liveProcesses(): number;
  /** Stops every machine and waits for their processes to exit. */
  close(): Promise<void>;
}
