/**
 * The backup guard: the sidecar service of a machine with backups (issue 17). Dokploy's
 * volume backup with `turnOff` stops it, tars the snapshot volume it filled on that stop,
 * uploads, and starts it again (machine/backup_guard.sh says how it copies). Nothing but
 * the guard writes the snapshot volume, and the guard is stopped while Dokploy reads it:
 * GNU tar never sees a file change, so a backup neither fails nor tears a file.
 */
import GUARD from "../../machine/backup_guard.sh" with { type: "text" };
import { escapeForCompose } from "../compose/escape.ts";

/** Compose service and volume names (Docker names: `<appName>_backup`, …). */
export const GUARD_SERVICE = "backup";
export const SNAPSHOT_VOLUME = "backup";
export const CONTROL_VOLUME = "backupctl";
/** Where the machine sees the control volume (DEVPOD_BACKUP_CTL of the bootstrap). */
export const MACHINE_CONTROL_DIR = "/run/devpod-backup";
export const GUARD_LABEL = "dev.devpod.role";

/** A compose container of the guard service (`<app>-backup-1`, v1's `<app>_backup_1`). */
export function isGuardContainer(name: string): boolean {
  return new RegExp(`[-_]${GUARD_SERVICE}[-_]\\d+$`).test(name);
}

/** The Docker volume Dokploy backs up: the snapshot, named as compose names it. */
export function snapshotVolumeName(appName: string): string {
  return `${appName}_${SNAPSHOT_VOLUME}`;
}

export function homeVolumeName(appName: string): string {
  return `${appName}_home`;
}

/**
 * The folder of a machine's backups in the bucket, as Dokploy lays it out:
 * `<appName>_<serviceName>/<prefix>/`, the prefix being the machine id.
 */
export function backupFolder(appName: string, machineId: string): string {
  return `${appName}_${GUARD_SERVICE}/${machineId}/`;
}

export interface GuardService {
  image: string;
  entrypoint: string[];
  environment: Record<string, string>;
  volumes: string[];
  network_mode: "none";
  restart: string;
  stop_grace_period: string;
  labels: Record<string, string>;
}

export function guardService(
  opts: { image: string; machineId: string; homeDir: string; providerVersion: string },
): GuardService {
  return {
    // The machine's image: already on the server, and it has sh, tar and find.
    image: opts.image,
    entrypoint: ["/bin/sh", "-c", escapeForCompose(GUARD), "devpod-backup-guard"],
    environment: {
      DEVPOD_MACHINE_ID: opts.machineId,
      DEVPOD_HOME_DIR: opts.homeDir,
      DEVPOD_SNAPSHOT_DIR: "/snapshot",
      DEVPOD_BACKUP_CTL: "/ctl",
    },
    volumes: [`home:${opts.homeDir}:ro`, `${SNAPSHOT_VOLUME}:/snapshot`, `${CONTROL_VOLUME}:/ctl`],
    network_mode: "none",
    // Up whenever the server is: a backup of a stopped machine needs it running.
    restart: "unless-stopped",
    // Dokploy's `docker stop` waits this long for the copy (docker's default is 10 s).
    stop_grace_period: "30m",
    labels: {
      [GUARD_LABEL]: "backup-guard",
      "dev.devpod.machine-id": opts.machineId,
      "dev.devpod.provider": "devpod-provider-dokploy",
      "dev.devpod.provider-version": opts.providerVersion,
    },
  };
}

/** Whether a service's compose file runs a backup guard beside the machine. */
export function hasBackupGuard(compose: { composeFile?: string | null }): boolean {
  return (compose.composeFile ?? "").includes(`${GUARD_LABEL}: backup-guard`);
}
