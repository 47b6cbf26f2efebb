/** Helpers for the backup tests (host runtime and real engine): rows, runs, the restore stream. */
import type { Emulator } from "./mod.ts";
import type { S3Server } from "./s3.ts";
import { ok } from "./test_support.ts";

export interface Run {
  deploymentId: string;
  status: string;
  logPath: string;
  errorMessage: string | null;
  title: string;
}

/** A destination on the test's s3rver ("Other" provider, as Dokploy's form sends it). */
export function destinationInput(s3: S3Server, extra: Record<string, unknown> = {}) {
  return {
    name: "test bucket",
    provider: "Other",
    accessKey: s3.accessKey,
    secretAccessKey: s3.secretKey,
    bucket: s3.bucket,
    region: "us-east-1",
    endpoint: s3.endpoint,
    additionalFlags: [],
    ...extra,
  };
}

/** A compose service's volume backup row, the provider's shape (serviceName machine). */
export async function createBackup(
  emu: Emulator,
  opts: { destinationId: string; composeId: string; volumeName: string } & Record<string, unknown>,
) {
  return await ok<{ volumeBackupId: string; appName: string }>(
    emu,
    "POST",
    "volumeBackups.create",
    {
      name: "home backup",
      prefix: "devpod",
      cronExpression: "0 3 * * *",
      serviceType: "compose",
      serviceName: "machine",
      turnOff: false,
      enabled: false,
      ...opts,
    },
  );
}

export const runs = (emu: Emulator, volumeBackupId: string) =>
  ok<Run[]>(emu, "GET", "deployment.allByType", { id: volumeBackupId, type: "volumeBackup" });

export const runLog = (emu: Emulator, deploymentId: string) =>
  ok<string>(emu, "GET", "deployment.readLogs", { deploymentId, tail: 1000 });

export interface SseEvent {
  event?: string;
  data: string;
}

/**
 * The restore subscription as a tRPC httpSubscriptionLink client sees it: the events,
 * and the emitted values (superjson `json`) in order.
 */
export async function restore(
  emu: Emulator,
  input: Record<string, unknown>,
  headers: Record<string, string> = { "x-api-key": emu.token },
) {
  const q = encodeURIComponent(JSON.stringify({ json: input }));
  const res = await fetch(
    `${emu.url}/api/trpc/volumeBackups.restoreVolumeBackupWithLogs?input=${q}`,
    { headers: { accept: "text/event-stream", ...headers }, signal: AbortSignal.timeout(120_000) },
  );
  const text = await res.text();
  const events: SseEvent[] = text.split("\n\n").filter((b) => b.trim()).map((block) => {
    const e: SseEvent = { data: "" };
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) e.event = line.slice(7);
      else if (line.startsWith("data: ")) e.data = line.slice(6);
    }
    return e;
  });
  const values = events.filter((e) => !e.event).map((e) => JSON.parse(e.data).json as string);
  return { status: res.status, contentType: res.headers.get("content-type"), text, events, values };
}

/** A new row (see createBackup), run once by hand: its newest run and that run's log. */
export async function backUpOnce(
  emu: Emulator,
  opts: Parameters<typeof createBackup>[1],
) {
  const vb = await createBackup(emu, opts);
  await ok(emu, "POST", "volumeBackups.runManually", { volumeBackupId: vb.volumeBackupId });
  const [run] = await runs(emu, vb.volumeBackupId);
  return { vb, run, log: await runLog(emu, run.deploymentId) };
}

/** `docker.getContainersByAppNameMatch` of a compose app. */
export const containers = (emu: Emulator, appName: string) =>
  ok<{ containerId: string; name: string; state: string; status: string }[]>(
    emu,
    "GET",
    "docker.getContainersByAppNameMatch",
    { appName, appType: "docker-compose" },
  );
