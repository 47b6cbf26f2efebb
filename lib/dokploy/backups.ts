/**
 * Dokploy's volume backups, destinations and restore (dokploy-api.md §9), typed. Kept
 * apart from api.ts: only the backup commands load it.
 */
import { z } from "zod";
import { parse } from "./api.ts";
import { type DokployClient, isNotFound } from "./client.ts";

const Destination = z.looseObject({
  destinationId: z.string(),
  name: z.string(),
  bucket: z.string().nullish(),
  endpoint: z.string().nullish(),
  serverId: z.string().nullish(),
});
export type Destination = z.infer<typeof Destination>;

const VolumeBackup = z.looseObject({
  volumeBackupId: z.string(),
  name: z.string(),
  volumeName: z.string(),
  prefix: z.string().nullish(),
  serviceName: z.string().nullish(),
  cronExpression: z.string().nullish(),
  keepLatestCount: z.number().nullish(),
  enabled: z.boolean().nullish(),
  turnOff: z.boolean().nullish(),
  destinationId: z.string().nullish(),
  composeId: z.string().nullish(),
  createdAt: z.string().nullish(),
});
export type VolumeBackup = z.infer<typeof VolumeBackup>;

const BackupRun = z.looseObject({
  deploymentId: z.string(),
  status: z.string().nullish(),
  createdAt: z.string().nullish(),
  startedAt: z.string().nullish(),
  finishedAt: z.string().nullish(),
  errorMessage: z.string().nullish(),
});
export type BackupRun = z.infer<typeof BackupRun>;

const BucketEntry = z.looseObject({
  Path: z.string(),
  Name: z.string(),
  Size: z.number().nullish(),
  IsDir: z.boolean().nullish(),
});

/** An object (or folder) in the bucket, by its full key. */
export interface BucketObject {
  key: string;
  name: string;
  size: number;
  isDir: boolean;
}

/** What volumeBackups.create/update take (update: the same plus the id, a full replace). */
export interface VolumeBackupInput {
  name: string;
  volumeName: string;
  prefix: string;
  cronExpression: string;
  destinationId: string;
  serviceName: string;
  composeId: string;
  turnOff: boolean;
  keepLatestCount: number;
  enabled: boolean;
}

/** A backup of a large home takes a while, and runManually answers only at its end. */
const BACKUP_CALL_MS = 3_600_000;

export class BackupApi {
  constructor(readonly client: DokployClient) {}

  async destinations(): Promise<Destination[]> {
    const res = await this.client.query("destination.all");
    return parse(z.array(Destination), res ?? [], "destination.all");
  }

  /**
   * destination.testConnection: Dokploy lists the bucket with rclone (for a self-hosted
   * Dokploy, from its own container). Throws the server's message when it cannot.
   */
  async testDestination(d: Record<string, unknown>, serverId: string | null): Promise<void> {
    const fields = [
      "name",
      "provider",
      "accessKey",
      "secretAccessKey",
      "bucket",
      "region",
      "endpoint",
      "additionalFlags",
    ];
    const input: Record<string, unknown> = Object.fromEntries(fields.map((k) => [k, d[k] ?? null]));
    input.additionalFlags = d.additionalFlags ?? [];
    if (serverId) input.serverId = serverId;
    await this.client.mutate("destination.testConnection", input, { timeoutMs: 60_000 });
  }

  /** destination.one: every field testConnection needs (secrets included, never printed). */
  async destination(destinationId: string): Promise<Record<string, unknown> | null> {
    try {
      const res = await this.client.query<Record<string, unknown>>("destination.one", {
        destinationId,
      });
      return res ?? null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async volumeBackupsOf(composeId: string): Promise<VolumeBackup[]> {
    const res = await this.client.query("volumeBackups.list", {
      id: composeId,
      volumeBackupType: "compose",
    });
    return parse(z.array(VolumeBackup), res ?? [], "volumeBackups.list");
  }

  async createVolumeBackup(input: VolumeBackupInput): Promise<VolumeBackup | null> {
    const res = await this.client.mutate<unknown>("volumeBackups.create", {
      ...input,
      serviceType: "compose",
    });
    const r = VolumeBackup.safeParse(res);
    return r.success ? r.data : null;
  }

  async updateVolumeBackup(volumeBackupId: string, input: VolumeBackupInput): Promise<void> {
    await this.client.mutate("volumeBackups.update", {
      ...input,
      serviceType: "compose",
      volumeBackupId,
    }, { idempotent: true });
  }

  /** Deletes the row; false when it was already gone. */
  async deleteVolumeBackup(volumeBackupId: string): Promise<boolean> {
    try {
      await this.client.mutate("volumeBackups.delete", { volumeBackupId }, { idempotent: true });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Runs the backup and answers when it ended, success or not (read the outcome from runs()). */
  async runVolumeBackup(volumeBackupId: string): Promise<void> {
    await this.client.mutate("volumeBackups.runManually", { volumeBackupId }, {
      timeoutMs: BACKUP_CALL_MS,
    });
  }

  /** The backup's last runs (Dokploy keeps 10), newest first. */
  async runs(volumeBackupId: string): Promise<BackupRun[]> {
    const res = await this.client.query("deployment.allByType", {
      id: volumeBackupId,
      type: "volumeBackup",
    });
    const runs = parse(z.array(BackupRun), res ?? [], "deployment.allByType");
    return runs.sort((a, b) => String(b.createdAt ?? "").localeCompare(String(a.createdAt ?? "")));
  }

  async runLog(deploymentId: string, tail = 40): Promise<string> {
    const res = await this.client.query<unknown>("deployment.readLogs", { deploymentId, tail });
    return typeof res === "string" ? res : "";
  }

  /**
   * The entries of one folder of the bucket (`dir/`; Dokploy answers at most 100), listed by
   * rclone where the service runs (serverId) or in Dokploy's container. Never the root: over
   * REST an empty `search` is absent and refused (dokploy-api.md §1); see searchRoot.
   */
  async listFolder(
    destinationId: string,
    dir: string,
    serverId: string | null,
  ): Promise<BucketObject[]> {
    const base = dir.replace(/\/*$/, "/");
    if (base === "/") throw new Error("listFolder needs a folder: the root is searchRoot's");
    return await this.#list(destinationId, base, serverId, base);
  }

  /**
   * The bucket root's entries whose name holds `term` (case-insensitive; the first 100):
   * Dokploy's search without a '/'. Real S3 answers the root's folders; s3rver 3.7.1 none.
   */
  async searchRoot(destinationId: string, term: string): Promise<BucketObject[]> {
    if (!term || term.includes("/")) throw new Error(`searchRoot needs a term without '/'`);
    return await this.#list(destinationId, term, null, "");
  }

  async #list(
    destinationId: string,
    search: string,
    serverId: string | null,
    base: string,
  ): Promise<BucketObject[]> {
    const res = await this.client.query("backup.listBackupFiles", {
      destinationId,
      search,
      serverId: serverId ?? undefined,
    }, { timeoutMs: 60_000 });
    const entries = parse(z.array(BucketEntry), res ?? [], "backup.listBackupFiles");
    return entries.map((e) => {
      const rel = e.Path.replace(/\/+$/, "");
      const key = base && rel.startsWith(base) ? rel : `${base}${rel}`;
      return { key, name: e.Name, size: e.Size ?? 0, isDir: e.IsDir ?? false };
    });
  }

  async removeContainer(containerId: string, serverId: string | null): Promise<void> {
    await this.client.mutate("docker.removeContainer", {
      containerId,
      ...(serverId ? { serverId } : {}),
    }, { idempotent: true, timeoutMs: 60_000 });
  }

  /** `docker volume rm` on the server (Dokploy ≥ 0.30.0); throws when it fails (in use, none). */
  async removeVolume(volumeName: string, serverId: string | null): Promise<void> {
    await this.client.mutate("dockerVolume.removeVolume", {
      volumeName,
      ...(serverId ? { serverId } : {}),
    }, { idempotent: true, timeoutMs: 60_000 });
  }

  /**
   * Dokploy's restore (a tRPC subscription, not on the REST API): the log lines it
   * streams. Dokploy swallows failures, so the caller judges the lines.
   */
  async restoreVolume(input: {
    backupFileName: string;
    destinationId: string;
    volumeName: string;
    composeId: string;
    serverId: string | null;
  }, onLine: (line: string) => void): Promise<string[]> {
    // Dokploy sends the command's output as it comes, in chunks that split and join lines.
    let partial = "";
    const lines: string[] = [];
    const take = (text: string) => {
      const parts = (partial + text).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        onLine(line);
      }
    };
    await this.client.subscribe("volumeBackups.restoreVolumeBackupWithLogs", {
      backupFileName: input.backupFileName,
      destinationId: input.destinationId,
      volumeName: input.volumeName,
      id: input.composeId,
      serviceType: "compose",
      ...(input.serverId ? { serverId: input.serverId } : {}),
    }, { timeoutMs: BACKUP_CALL_MS, onData: (v) => take(String(v)) });
    if (partial) take("\n");
    return lines;
  }
}
