/**
 * destination.*, volumeBackups.*, backup.listBackupFiles, docker.removeContainer and
 * deployment.allByType: backups of a service's volume to S3 (dokploy-api.md §9). The
 * rclone and docker commands are Dokploy's own and really run (see backups/).
 */
import { listBackupFiles, testConnectionCommand } from "../backups/commands.ts";
import { backupService, findVolumeBackup, runVolumeBackup } from "../backups/run.ts";
import type { Ctx, Input, Procedures } from "../context.ts";
import { execLocal, execOn } from "../dokploy_exec.ts";
import { ApiError, notFound } from "../errors.ts";
import type { DestinationRow, VolumeBackupRow } from "../store.ts";
import { newId, now, ORGANIZATION_ID, randomSuffix } from "../store.ts";
import { findServer } from "./servers.ts";

export function findDestination(ctx: Ctx, destinationId: unknown): DestinationRow {
  const d = ctx.store.destinations.get(String(destinationId));
  if (!d) throw notFound("Destination");
  return d;
}

/** A router's `catch (e) { throw new TRPCError({ code, message: e.message }) }`. */
async function rethrowAs<T>(code: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new ApiError(code, (e as Error).message);
  }
}

const DESTINATION_FIELDS = [
  "name",
  "provider",
  "accessKey",
  "secretAccessKey",
  "bucket",
  "region",
  "endpoint",
  "additionalFlags",
] as const;

const SERVICE_TYPES = [
  "application",
  "postgres",
  "mysql",
  "mariadb",
  "mongo",
  "redis",
  "compose",
  "libsql",
] as const;

/** Every column of a volume_backup row the API may set (create, and update's full set). */
const VOLUME_BACKUP_FIELDS = [
  "name",
  "volumeName",
  "prefix",
  "serviceType",
  "appName",
  "serviceName",
  "turnOff",
  "cronExpression",
  "keepLatestCount",
  "enabled",
  ...SERVICE_TYPES.map((t) => `${t}Id` as const),
  "createdAt",
  "destinationId",
] as const;

/** faker's hacker words, a few: generateAppName("volumeBackup") reads like these. */
const VERBS = ["back-up", "bypass", "compress", "index", "navigate", "parse", "quantify"];
const ADJECTIVES = ["auxiliary", "digital", "haptic", "neural", "optical", "virtual"];
const NOUNS = ["bandwidth", "capacitor", "firewall", "matrix", "pixel", "protocol"];
const pick = (words: string[]) => words[Math.floor(Math.random() * words.length)];

function generateAppName(type: string): string {
  return `${type}-${pick(VERBS)}-${pick(ADJECTIVES)}-${pick(NOUNS)}-${randomSuffix(6)}`;
}

/** Postgres refuses a row whose service or destination id names no row (FK). */
function checkReferences(ctx: Ctx, row: VolumeBackupRow) {
  const fk = (column: string, table: string) =>
    new ApiError(
      "INTERNAL_SERVER_ERROR",
      `Failed query: insert into "volume_backup": insert or update on table "volume_backup" ` +
        `violates foreign key constraint "volume_backup_${column}_${table}_${column}_fk"`,
    );
  if (!ctx.store.destinations.has(row.destinationId)) throw fk("destinationId", "destination");
  if (row.composeId && !ctx.store.composes.has(row.composeId)) throw fk("composeId", "compose");
  for (const t of SERVICE_TYPES) {
    if (t !== "compose" && row[`${t}Id`]) {
      throw fk(`${t}Id`, t === "application" ? "application" : t);
    }
  }
}

/** Dokploy's scheduling of a row after create/update (and at boot). */
export function scheduleRow(ctx: Ctx, vb: VolumeBackupRow): void {
  ctx.backupJobs.register(
    vb.volumeBackupId,
    vb.cronExpression,
    () => runVolumeBackup(ctx, vb.volumeBackupId),
  );
}

/** A row with its relations as volumeBackups.list returns them (a few columns each). */
function withServiceColumns(ctx: Ctx, vb: VolumeBackupRow) {
  const compose = backupService(ctx, vb);
  return {
    ...vb,
    ...Object.fromEntries(SERVICE_TYPES.map((t) => [t, null])),
    compose: compose
      ? { composeId: compose.composeId, appName: compose.appName, serverId: compose.serverId }
      : null,
  };
}

export const backupProcedures: Procedures = {
  "destination.create": (ctx, input: Input) => {
    const row = {
      destinationId: newId(),
      ...Object.fromEntries(DESTINATION_FIELDS.map((f) => [f, input[f] ?? null])),
      organizationId: ORGANIZATION_ID,
      createdAt: now(),
    } as DestinationRow;
    ctx.store.destinations.set(row.destinationId, row);
    return row;
  },

  // Self-hosted Dokploy runs `rclone ls` in its own container, whatever serverId says.
  "destination.testConnection": (ctx, input: Input) =>
    rethrowAs("BAD_REQUEST", async () => {
      await execLocal(ctx, testConnectionCommand(input as unknown as DestinationRow));
    }),

  // The row as stored: secrets included (unlike volumeBackups.one's destination).
  "destination.one": (ctx, input: Input) => findDestination(ctx, input.destinationId),

  "destination.all": (ctx) =>
    [...ctx.store.destinations.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)),

  // Its volume backups (and their runs) go with it (FK cascade); their jobs do not.
  "destination.remove": (ctx, input: Input) => {
    const d = findDestination(ctx, input.destinationId);
    ctx.store.destinations.delete(d.destinationId);
    for (const vb of [...ctx.store.volumeBackups.values()]) {
      if (vb.destinationId === d.destinationId) ctx.store.removeVolumeBackup(vb.volumeBackupId);
    }
    return d;
  },

  // Any failure, "not found" included, comes back as a 400 with its message.
  "destination.update": (ctx, input: Input) =>
    rethrowAs("BAD_REQUEST", () => {
      const d = findDestination(ctx, input.destinationId);
      for (const f of DESTINATION_FIELDS) {
        if (input[f] !== undefined) Object.assign(d, { [f]: input[f] });
      }
      return d;
    }),

  "volumeBackups.create": (ctx, input: Input) => {
    const row = {
      volumeBackupId: newId(),
      serviceType: "application",
      appName: generateAppName("volumeBackup"),
      serviceName: null,
      turnOff: false,
      keepLatestCount: null,
      enabled: null,
      ...Object.fromEntries(SERVICE_TYPES.map((t) => [`${t}Id`, null])),
      createdAt: now(),
      ...Object.fromEntries(
        VOLUME_BACKUP_FIELDS.filter((f) => input[f] !== undefined).map((f) => [f, input[f]]),
      ),
    } as VolumeBackupRow;
    checkReferences(ctx, row);
    ctx.store.volumeBackups.set(row.volumeBackupId, row);
    if (row.enabled) scheduleRow(ctx, row);
    return row;
  },

  // findVolumeBackupById: the service with its environment and project; the destination
  // without its keys.
  "volumeBackups.one": (ctx, input: Input) => {
    const vb = findVolumeBackup(ctx, input.volumeBackupId);
    const compose = backupService(ctx, vb);
    const env = compose?.environmentId
      ? ctx.store.environments.get(compose.environmentId)
      : undefined;
    const d = ctx.store.destinations.get(vb.destinationId);
    const { accessKey: _a, secretAccessKey: _s, ...destination } = d ?? {} as DestinationRow;
    return {
      ...vb,
      ...Object.fromEntries(SERVICE_TYPES.map((t) => [t, null])),
      compose: compose
        ? {
          ...compose,
          environment: env
            ? { ...env, project: ctx.store.projects.get(env.projectId) ?? null }
            : null,
        }
        : null,
      destination: d ? destination : null,
    };
  },

  "volumeBackups.list": (ctx, input: Input) => {
    const column = `${input.volumeBackupType}Id` as keyof VolumeBackupRow;
    return [...ctx.store.volumeBackups.values()]
      .filter((vb) => vb[column] === input.id)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .map((vb) => withServiceColumns(ctx, vb));
  },

  // Sets every column given (unknown keys dropped by the schema); then re-schedules.
  "volumeBackups.update": (ctx, input: Input) => {
    const vb = findVolumeBackup(ctx, input.volumeBackupId);
    const next = { ...vb };
    for (const f of VOLUME_BACKUP_FIELDS) {
      if (input[f] !== undefined) Object.assign(next, { [f]: input[f] });
    }
    checkReferences(ctx, next);
    Object.assign(vb, next);
    ctx.backupJobs.cancel(vb.volumeBackupId);
    if (vb.enabled) scheduleRow(ctx, vb);
    return vb;
  },

  // Dokploy's bug, kept: the row goes, its job keeps firing (on nothing) until a restart.
  "volumeBackups.delete": (ctx, input: Input) => {
    const vb = findVolumeBackup(ctx, input.volumeBackupId);
    ctx.store.removeVolumeBackup(vb.volumeBackupId);
    return undefined;
  },

  // Waits for the whole run; answers nothing, or `false` when no run could even start
  // (e.g. an unreachable server: the deployment could not be made).
  "volumeBackups.runManually": async (ctx, input: Input) => {
    const vb = findVolumeBackup(ctx, input.volumeBackupId);
    try {
      await runVolumeBackup(ctx, vb.volumeBackupId);
      return undefined;
    } catch {
      return false;
    }
  },

  // `rclone lsjson` of the folder before the last '/', filtered by what follows it.
  "backup.listBackupFiles": (ctx, input: Input) =>
    rethrowAs("BAD_REQUEST", async () => {
      const destination = findDestination(ctx, input.destinationId);
      const serverId = (input.serverId as string | undefined) || null;
      if (serverId) findServer(ctx, serverId);
      const { command, baseDir, term } = listBackupFiles(destination, String(input.search));
      const { stdout } = await execOn(ctx, serverId, command);
      let files: { Path: string }[];
      try {
        files = JSON.parse(stdout);
      } catch {
        throw new Error("Failed to parse backup files list");
      }
      const results = baseDir ? files.map((f) => ({ ...f, Path: `${baseDir}${f.Path}` })) : files;
      const needle = term.toLowerCase();
      return results.filter((f) => !term || f.Path.toLowerCase().includes(needle)).slice(0, 100);
    }),

  // `docker rm -f <id>` on the server; anything on stderr fails the call.
  "docker.removeContainer": async (ctx, input: Input) => {
    const serverId = (input.serverId as string | undefined) || null;
    if (serverId) findServer(ctx, serverId);
    const { stderr } = await rethrowAs(
      "INTERNAL_SERVER_ERROR",
      () => execOn(ctx, serverId, `docker rm -f ${input.containerId}`),
    );
    if (stderr) throw new ApiError("INTERNAL_SERVER_ERROR", stderr);
    return undefined;
  },

  // dockerVolume.removeVolume (v0.30.0+): `docker volume rm <name>` on the server; a
  // failing command (in use, no such volume) fails the call.
  "dockerVolume.removeVolume": async (ctx, input: Input) => {
    const serverId = (input.serverId as string | undefined) || null;
    if (serverId) findServer(ctx, serverId);
    await rethrowAs(
      "INTERNAL_SERVER_ERROR",
      () => execOn(ctx, serverId, `docker volume rm '${input.volumeName}'`),
    );
    return undefined;
  },

  // Every run of the given owner, newest first (a volume backup keeps about 10).
  "deployment.allByType": (ctx, input: Input) => {
    const column = `${input.type}Id`;
    return [...ctx.store.deployments.values()]
      .filter((d) => (d as unknown as Record<string, unknown>)[column] === input.id)
      .reverse()
      .map((d) => ({ ...d, rollback: null }));
  },
};
