/** What every procedure handler gets: the state and the machinery of one emulator. */
import type { BackupSchedule } from "./backups/schedule.ts";
import type { DeployQueues } from "./deploy_queue.ts";
import type { DokployProcess } from "./dokploy_exec.ts";
import type { MachineRuntime } from "./machine/runtime.ts";
import type { Profile } from "./profiles.ts";
import type { Store } from "./store.ts";

export interface Ctx {
  store: Store;
  profile: Profile;
  runtime: MachineRuntime;
  queues: DeployQueues;
  dataDir: string;
  deployDelayMs: number;
  /** Aborted by close(): queued deploys stop waiting and give up. */
  shutdown: AbortSignal;
  /** The Dokploy process: its shell commands' children and its lifetime (restarts). */
  dokploy: DokployProcess;
  /** node-schedule's jobs of this Dokploy process (volume backups). */
  backupJobs: BackupSchedule;
}

/** Validated procedure input (the schema guarantees the types a handler relies on). */
export type Input = Record<string, unknown>;

export type Handler = (ctx: Ctx, input: Input) => unknown;

/** Procedure name → handler; names as in the OpenAPI paths, e.g. "compose.create". */
export type Procedures = Record<string, Handler>;
