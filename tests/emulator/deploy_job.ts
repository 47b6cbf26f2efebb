/**
 * The compose deploy pipeline as Dokploy's queue worker runs it: a deployment row
 * (running), the files written, `docker compose up -d`, then done or error, with a
 * deployment log that reads like the real one.
 *
 * A job whose Dokploy restarts under it (`lost`) is lost the way Dokploy loses it: the
 * deployment row and the service's composeStatus stay `running` forever, the log stops
 * growing, and if `docker compose up` had not started yet there is no container.
 */
import { composeApp, writeComposeFiles } from "./compose_files.ts";
import type { Ctx } from "./context.ts";
import { deployedComposeFile } from "./procedures/domains.ts";
import { sshFailure } from "./servers.ts";
import type { ComposeRow, DeploymentRow } from "./store.ts";
import { newId, now } from "./store.ts";

export type DeployKind = "deploy" | "redeploy";

export function queueDeploy(
  ctx: Ctx,
  compose: ComposeRow,
  kind: DeployKind,
  title?: string,
  description?: string,
): void {
  const key = compose.serverId ?? "dokploy-host";
  ctx.queues.enqueue(
    key,
    (lost) => runDeploy(ctx, lost, compose.composeId, kind, title, description),
  );
}

async function runDeploy(
  ctx: Ctx,
  lost: AbortSignal,
  composeId: string,
  kind: DeployKind,
  title?: string,
  description?: string,
): Promise<void> {
  const compose = ctx.store.composes.get(composeId);
  if (!compose || ctx.shutdown.aborted || lost.aborted) return;
  const { appName } = compose;
  // createDeploymentCompose makes the log over SSH on a remote server; when that fails it
  // records a finished `error` deployment without a log, and the job ends there.
  const unreachable = sshFailure(ctx.store, compose.serverId);
  if (unreachable) {
    const failed: DeploymentRow = {
      ...deploymentRow(compose, kind, title, description, ""),
      status: "error",
      finishedAt: now(),
      errorMessage: `An error have occurred: ${unreachable}`,
    };
    ctx.store.deployments.set(failed.deploymentId, failed);
    compose.composeStatus = "error";
    return;
  }
  const logDir = `${ctx.dataDir}/logs/${appName}`;
  await Deno.mkdir(logDir, { recursive: true });
  if (lost.aborted) return;
  const deployment = deploymentRow(
    compose,
    kind,
    title,
    description,
    `${logDir}/${appName}-${now().replace(/[:.]/g, "-")}.log`,
  );
  ctx.store.deployments.set(deployment.deploymentId, deployment);
  compose.composeStatus = "running";
  // The log is the output pipe of Dokploy's process: it dies with it.
  const log = (line: string) => {
    if (!lost.aborted) Deno.writeTextFileSync(deployment.logPath, `${line}\n`, { append: true });
  };

  const command = `compose -p ${appName} -f docker-compose.yml up -d --build --remove-orphans`;
  let ok = false;
  try {
    for (const line of banner(compose, command)) log(line);
    const app = composeApp(ctx, compose);
    // writeDomainsToCompose: a domain naming a missing service ends the command here.
    let file: string;
    try {
      file = deployedComposeFile(compose, ctx.store.domainsOf(composeId));
    } catch (e) {
      throw new Error(`❌ Has occurred an error: ${(e as Error).message}`);
    }
    await writeComposeFiles(app, compose, file);
    // Queue wait and image work of a real server, in short (the real engine takes its own).
    await abortableSleep(ctx.deployDelayMs, AbortSignal.any([ctx.shutdown, lost]));
    if (lost.aborted) return;
    // The server went away mid-deploy: the SSH call fails, and so does the one that would
    // write "Error occurred" to the log, so the row and the service stay `running`.
    if (sshFailure(ctx.store, compose.serverId)) return;
    // Once `docker compose up` runs, the engine finishes it even if Dokploy dies.
    await ctx.runtime.deploy(app, log);
    log("Docker Compose Deployed: ✅");
    ok = true;
  } catch (e) {
    log((e as Error).message);
    log("Error: ❌ Docker command failed");
  }
  if (lost.aborted) return; // nobody is left to record the outcome
  deployment.status = ok ? "done" : "error";
  deployment.finishedAt = now();
  compose.composeStatus = ok ? "done" : "error";
}

function deploymentRow(
  compose: ComposeRow,
  kind: DeployKind,
  title: string | undefined,
  description: string | undefined,
  logPath: string,
): DeploymentRow {
  return {
    deploymentId: newId(),
    title: title ?? (kind === "deploy" ? "Manual deployment" : "Rebuild deployment"),
    description: description ?? "",
    status: "running",
    logPath,
    pid: null,
    applicationId: null,
    composeId: compose.composeId,
    serverId: compose.serverId,
    isPreviewDeployment: false,
    previewDeploymentId: null,
    createdAt: now(),
    startedAt: now(),
    finishedAt: null,
    errorMessage: null,
    scheduleId: null,
    backupId: null,
    rollbackId: null,
    volumeBackupId: null,
  };
}

function banner(compose: ComposeRow, command: string): string[] {
  const rows = [
    `App Name: ${compose.appName}`,
    "Build Compose 🐳",
    "Detected: 0 mounts 📂",
    `Command: docker ${command}`,
    `Source Type: docker ${compose.sourceType} ✅`,
    `Compose Type: ${compose.composeType} ✅`,
  ];
  const width = 78;
  return [
    `╔${"═".repeat(width)}╗`,
    ...rows.map((r) => `║ ${r.padEnd(width - 2)} ║`),
    `╚${"═".repeat(width)}╝`,
  ];
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error("Cannot connect to the Docker daemon"));
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error("Cannot connect to the Docker daemon"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
