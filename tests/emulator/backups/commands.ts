/**
 * The shell commands Dokploy v0.30.2 runs for destinations, volume backups and restores
 * (packages/server/src/utils/volume-backups/*.ts, utils/backups/utils.ts and the
 * destination, backup and docker routers), rebuilt line for line: their `echo`s are the
 * backup log and the restore stream, and their exit codes decide done or error.
 *
 * Pure: paths come in as arguments (`base` is Dokploy's `/etc/dokploy` on that server).
 */
import type { DestinationRow, VolumeBackupRow } from "../store.ts";

/** shell-quote 1.8's `quote([s])`, which Dokploy applies to user values in commands. */
export function shellQuote(s: string): string {
  if (/["\s]/.test(s) && !/'/.test(s)) return `'${s.replace(/(['\\])/g, "\\$1")}'`;
  if (/["'\s]/.test(s)) return `"${s.replace(/(["\\$`!])/g, "\\$1")}"`;
  return s.replace(/([A-Za-z]:)?([#!"$&'()*,:;<=>?@[\\\]^`{|}])/g, "$1\\$2");
}

type Credentials = Pick<
  DestinationRow,
  "accessKey" | "secretAccessKey" | "region" | "endpoint" | "provider" | "additionalFlags"
>;

/** getS3Credentials: the rclone flags of a destination (no config file, `:s3:` remotes). */
export function rcloneFlags(d: Credentials): string[] {
  return [
    ...(d.provider ? [`--s3-provider=${shellQuote(d.provider)}`] : []),
    `--s3-access-key-id=${shellQuote(d.accessKey)}`,
    `--s3-secret-access-key=${shellQuote(d.secretAccessKey)}`,
    `--s3-region=${shellQuote(d.region)}`,
    `--s3-endpoint=${shellQuote(d.endpoint)}`,
    "--s3-no-check-bucket",
    "--s3-force-path-style",
    ...(d.additionalFlags ?? []),
  ];
}

/** destination.testConnection: `rclone ls` of the bucket, one try, short timeouts. */
export function testConnectionCommand(d: Credentials & { bucket: string }): string {
  const flags = rcloneFlags({ ...d, additionalFlags: [] });
  const extra = ["--retries 1", "--low-level-retries 1", "--timeout 10s", "--contimeout 5s"];
  // The provider flag stays first; the additional flags come after the timeouts.
  const all = [...flags, ...extra, ...(d.additionalFlags ?? [])];
  return `rclone ls ${all.join(" ")} ${shellQuote(`:s3:${d.bucket}`)}`;
}

/** getBackupTimestamp: ISO time with ':' and '.' made '-' (2026-12-03T12-18-10-292Z). */
export function backupTimestamp(at = new Date()): string {
  return at.toISOString().replace(/[:.]/g, "-");
}

/** normalizeS3Path: no leading/trailing slashes, then one trailing slash ("" stays ""). */
export function normalizeS3Path(prefix: string): string {
  const p = prefix.trim().replace(/^\/+|\/+$/g, "");
  return p ? `${p}/` : "";
}

/** The service a volume backup belongs to, as far as its commands need it. */
export interface BackupService {
  appName: string;
  composeType: string;
}

/** getVolumeServiceAppName: the bucket folder, `<composeAppName>_<serviceName>`. */
export function s3AppName(vb: VolumeBackupRow, compose: BackupService | null): string {
  if (compose) return vb.serviceName ? `${compose.appName}_${vb.serviceName}` : compose.appName;
  return vb.appName; // no application/database rows in the emulator
}

export interface BackupPlan {
  /** What runs (wrapped by the caller in `(…) >> <log> 2>&1`). */
  script: string;
  fileName: string;
  /** The object key in the bucket. */
  key: string;
}

/** backupVolume: the backup script of one run at `at`. */
export function backupScript(opts: {
  vb: VolumeBackupRow;
  destination: DestinationRow;
  compose: BackupService | null;
  base: string;
  at?: Date;
}): BackupPlan {
  const { vb, destination, compose, base } = opts;
  const fileName = `${vb.volumeName}-${backupTimestamp(opts.at)}.tar`;
  const key = `${s3AppName(vb, compose)}/${normalizeS3Path(vb.prefix || "")}${fileName}`;
  const dir = `${base}/volume-backups/${vb.appName}`;
  const flags = rcloneFlags(destination).join(" ");
  const backup = [
    "set -e",
    `echo "Volume name: ${vb.volumeName}"`,
    `echo "Backup file name: ${fileName}"`,
    `echo "Turning off volume backup: ${vb.turnOff ? "Yes" : "No"}"`,
    'echo "Starting volume backup"',
    `echo "Dir: ${dir}"`,
    `docker run --rm -v ${vb.volumeName}:/volume_data -v ${dir}:/backup ubuntu ` +
    `bash -c "cd /volume_data && tar cvf /backup/${fileName} ."`,
    'echo "Volume backup done ✅"',
  ].join("\n");
  const upload = [
    'echo "Starting upload to S3..."',
    `rclone copyto ${flags} "${dir}/${fileName}" ":s3:${destination.bucket}/${key}"`,
    'echo "Upload to S3 done ✅"',
    'echo "Cleaning up local backup file..."',
    `rm "${dir}/${fileName}"`,
    'echo "Local backup file cleaned up ✅"',
  ].join("\n");
  const plan = (script: string) => ({ script, fileName, key });
  if (!vb.turnOff) return plan(`${backup}\n${upload}`);

  const lockId = vb.serviceType === "application"
    ? "undefined" // its application's appName; there are no applications here
    : `${compose?.appName}_${vb.serviceName}`;
  const locked = (body: string) => lockWrapper(`${base}/volume-backup-lock-${lockId}`, body);
  if (vb.serviceType === "application") {
    const app = "undefined";
    return plan(locked([
      'echo "Stopping application to 0 replicas"',
      `ACTUAL_REPLICAS=$(docker service inspect ${app} --format "{{.Spec.Mode.Replicated.Replicas}}")`,
      'echo "Actual replicas: $ACTUAL_REPLICAS"',
      `docker service update --replicas=0 ${app}`,
      backup,
      'echo "Starting application to $ACTUAL_REPLICAS replicas"',
      `docker service update --replicas=$ACTUAL_REPLICAS --with-registry-auth ${app}`,
      upload,
    ].join("\n")));
  }
  if (vb.serviceType !== "compose") return plan("undefined"); // backupVolume returns nothing
  const app = compose?.appName ?? "";
  const service = `${app}_${vb.serviceName}`;
  const [stop, start] = compose?.composeType === "stack"
    ? [
      [
        'echo "Stopping compose to 0 replicas"',
        `echo "Service name: ${service}"`,
        `ACTUAL_REPLICAS=$(docker service inspect ${service} --format "{{.Spec.Mode.Replicated.Replicas}}")`,
        'echo "Actual replicas: $ACTUAL_REPLICAS"',
        `docker service update --replicas=0 ${service}`,
      ],
      [
        'echo "Starting compose to $ACTUAL_REPLICAS replicas"',
        `docker service update --replicas=$ACTUAL_REPLICAS --with-registry-auth ${service}`,
      ],
    ]
    : [
      [
        'echo "Stopping compose container"',
        `ID=$(docker ps -q --filter "label=com.docker.compose.project=${app}" ` +
        `--filter "label=com.docker.compose.service=${vb.serviceName}")`,
        // Under the lock wrapper's `set -e`: an empty ID fails here, before the tar.
        "docker stop $ID",
      ],
      ['echo "Starting compose container"', "docker start $ID", 'echo "Compose container started"'],
    ];
  return plan(locked([...stop, backup, ...start, upload].join("\n")));
}

/** The per-service lock of a turnOff backup (flock, or a lock dir without it). */
function lockWrapper(lockPath: string, body: string): string {
  return [
    "set -e",
    `LOCK_PATH="${lockPath}"`,
    'echo "Waiting for volume backup lock: $LOCK_PATH"',
    "if command -v flock >/dev/null 2>&1; then",
    '  exec 9>"$LOCK_PATH"',
    "  flock 9",
    "else",
    '  LOCK_DIR="$LOCK_PATH.dir"',
    '  while ! mkdir "$LOCK_DIR" 2>/dev/null; do',
    '    echo "Waiting for volume backup lock: $LOCK_PATH"',
    "    sleep 5",
    "  done",
    `  trap 'rm -rf "$LOCK_DIR"' EXIT`,
    "fi",
    'echo "Volume backup lock acquired"',
    body,
    'echo "Volume backup lock released"',
  ].join("\n");
}

/** cleanupOldVolumeBackups: keep the newest `keep` `<volumeName>-*.tar`, delete the rest. */
export function retentionCommand(
  vb: VolumeBackupRow,
  destination: DestinationRow,
  compose: BackupService | null,
  keep: number,
): string {
  const flags = rcloneFlags(destination).join(" ");
  const folder = `:s3:${destination.bucket}/${s3AppName(vb, compose)}/${
    normalizeS3Path(vb.prefix || "")
  }`;
  return `rclone lsf ${flags} --include "${vb.volumeName}-*.tar" ${folder} | ` +
    `sort -r | tail -n +$((${keep}+1)) | xargs -I{} rclone delete ${flags} ${folder}{}`;
}

/** What `backup.listBackupFiles` lists: the folder before the last '/', and a filter. */
export function listBackupFiles(destination: DestinationRow, search: string) {
  const slash = search.lastIndexOf("/");
  const baseDir = slash !== -1 ? normalizeS3Path(search.slice(0, slash + 1)) : "";
  const term = slash !== -1 ? search.slice(slash + 1) : search;
  const bucket = `:s3:${destination.bucket}`;
  const path = baseDir ? `${bucket}/${baseDir}` : bucket;
  const command = `rclone lsjson ${rcloneFlags(destination).join(" ")} ${
    shellQuote(path)
  } --no-mimetype --no-modtime 2>/dev/null`;
  return { command, baseDir, term };
}

/** restoreVolume: download, then restore into a volume that is absent or used by none. */
export function restoreScript(opts: {
  destination: DestinationRow;
  volumeName: string;
  backupFileName: string;
  base: string;
  compose: BackupService;
}): string {
  const { destination, volumeName: vol, backupFileName: file, base, compose } = opts;
  const dir = `${base}/volume-backups/${vol}`;
  const download = `rclone copyto ${rcloneFlags(destination).join(" ")} ${
    shellQuote(`:s3:${destination.bucket}/${file}`)
  } ${shellQuote(`${dir}/${file}`)}`;
  const restore = [
    "set -e",
    `echo "Volume name: ${vol}"`,
    `echo "Backup file name: ${file}"`,
    `echo "Volume backup path: ${dir}"`,
    'echo "Downloading backup from S3..."',
    `mkdir -p ${dir}`,
    download,
    'echo "Download completed ✅"',
    'echo "Creating new volume and restoring data..."',
    `docker run --rm -v ${vol}:/volume_data -v ${dir}:/backup ubuntu ` +
    `bash -c "cd /volume_data && tar xvf /backup/${shellQuote(file)} ."`,
    'echo "Volume restore completed ✅"',
  ].join("\n");
  const inUse = [
    'echo ""',
    'echo "⚠️  WARNING: Cannot restore volume as it is currently in use!"',
    'echo ""',
    `echo "📋 The following containers are using volume '${vol}':"`,
    'echo ""',
    `echo "$CONTAINERS_USING_VOLUME" | while IFS='|' read container_id container_name container_state labels; do`,
    '  echo "   🐳 Container: $container_name ($container_id)"',
    '  echo "      Status: $container_state"',
    '  if echo "$labels" | grep -q "com.docker.swarm.service.name="; then',
    `    SERVICE_NAME=$(echo "$labels" | grep -o "com.docker.swarm.service.name=[^,]*" | cut -d'=' -f2)`,
    '    echo "      Type: Docker Swarm Service ($SERVICE_NAME)"',
    '  elif echo "$labels" | grep -q "com.docker.compose.project="; then',
    `    PROJECT_NAME=$(echo "$labels" | grep -o "com.docker.compose.project=[^,]*" | cut -d'=' -f2)`,
    '    echo "      Type: Docker Compose ($PROJECT_NAME)"',
    "  else",
    '    echo "      Type: Regular Container"',
    "  fi",
    '  echo ""',
    "done",
    'echo ""',
    'echo "🔧 To restore this volume, please:"',
    'echo "   1. Stop all containers/services using this volume"',
    `echo "   2. Remove the existing volume: docker volume rm ${vol}"`,
    'echo "   3. Run the restore operation again"',
    'echo ""',
    'echo "❌ Volume restore aborted - volume is in use"',
    "exit 1",
  ].join("\n");
  return [
    'echo "=== VOLUME RESTORE FOR COMPOSE ==="',
    `echo "Compose: ${compose.appName}"`,
    `echo "Compose Type: ${compose.composeType}"`,
    `VOLUME_EXISTS=$(docker volume ls -q --filter name="^${vol}$" | wc -l)`,
    'echo "Volume exists: $VOLUME_EXISTS"',
    'if [ "$VOLUME_EXISTS" = "0" ]; then',
    '  echo "Volume doesn\'t exist, proceeding with direct restore"',
    restore,
    "else",
    '  echo "Volume exists, checking for containers using it (including stopped ones)..."',
    `  CONTAINERS_USING_VOLUME=$(docker ps -a --filter "volume=${vol}" ` +
    `--format "{{.ID}}|{{.Names}}|{{.State}}|{{.Labels}}")`,
    '  if [ -z "$CONTAINERS_USING_VOLUME" ]; then',
    '    echo "Volume exists but no containers are using it"',
    '    echo "Removing existing volume and proceeding with restore"',
    `    docker volume rm ${vol} --force`,
    restore,
    "  else",
    inUse,
    "  fi",
    "fi",
  ].join("\n");
}
