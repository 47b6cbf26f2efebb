/**
 * Reading how a cache's last deploy went and writing its failure record (failure.ts)
 * into its description. Only the runs that first see a failure, retry the cache or see
 * it recovered call these; every other create reads the record from its snapshot.
 */
import type { Deployment, DokployApi } from "../dokploy/api.ts";
import { deploymentsOf } from "../machine/deploy.ts";
import { type CacheFailure, reasonFromLog } from "./failure.ts";
import { describeCache } from "./spec.ts";

export type DeployOutcome =
  | { kind: "done" }
  | { kind: "failed"; at: string; reason: string }
  /** Queued or running, or no deploy at all (since the time asked about). */
  | { kind: "pending" };

/**
 * The outcome of the cache's newest deploy (one call, and one more to read the log of a
 * failed one); `since`: only a deploy Dokploy started at or after that time counts.
 */
export async function lastDeployOutcome(
  api: DokployApi,
  composeId: string,
  since?: string,
): Promise<DeployOutcome> {
  const newest: Deployment | undefined = (await deploymentsOf(api, { composeId }))[0];
  if (!newest || (since && String(newest.createdAt ?? "") < since)) return { kind: "pending" };
  if (newest.status === "done") return { kind: "done" };
  if (newest.status !== "error" && newest.status !== "cancelled") return { kind: "pending" };
  const log = await api.deploymentLog(newest.deploymentId, 20).catch(() => "");
  const finished = (newest as { finishedAt?: unknown }).finishedAt;
  return {
    kind: "failed",
    at: typeof finished === "string" ? finished : newest.createdAt ?? new Date().toISOString(),
    reason: reasonFromLog(log, newest.errorMessage),
  };
}

/**
 * Writes (or with null clears) the cache's failure record: one compose.update. With
 * `composeFile`, its new file too; `cache.prebuilds` and `cache.agents` say whether the
 * file (new or kept) has the prebuild registry and the agent cache, so the description
 * keeps saying so.
 */
export async function writeFailure(
  api: DokployApi,
  cache: { composeId: string; serverId: string | null; prebuilds: boolean; agents: boolean },
  providerVersion: string,
  failure: CacheFailure | null,
  composeFile?: string,
): Promise<void> {
  await api.updateCompose(cache.composeId, {
    description: describeCache(
      cache.serverId,
      providerVersion,
      failure,
      cache.prebuilds,
      cache.agents,
    ),
    ...(composeFile ? { composeFile } : {}),
  });
}
