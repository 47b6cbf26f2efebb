/**
 * `doctor`'s view of the shared image caches: one line per server's cache (running,
 * what it stores, how many machines are on its server), and what the target server
 * will get. A cache that is down never breaks a machine, but it is worth fixing: every
 * pull then goes to Docker Hub again. A failed one says why and when it is retried;
 * `doctor --fix` retries it now, with the compose file the current options give.
 */
import type { ProviderConfig } from "../config.ts";
import type { DokployApi } from "../dokploy/api.ts";
import { DeployFailedError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { deployAndWait } from "../machine/deploy.ts";
import type { ProjectSnapshot } from "../machine/project.ts";
import type { Check } from "../servers/doctor.ts";
import { PROVIDER_VERSION } from "../version.ts";
import { PREBUILD_REPOSITORY } from "../prebuild/spec.ts";
import { wantsImageCache, wantsPrebuilds } from "./ensure.ts";
import { failureAt, FIX_HINT, retryIn, utcMinute } from "./failure.ts";
import { DEPLOY_TITLE } from "./follow_up.ts";
import { formatKiB, type ImageCacheInfo, isFailed, listImageCaches } from "./inventory.ts";
import { lastDeployOutcome, writeFailure } from "./record.ts";
import { cacheFileFor, serverKey } from "./spec.ts";

/** How long `doctor --fix` waits for a cache's deploy (a pull that cannot connect takes a while). */
const FIX_WAIT_MS = 180_000;

export interface CacheFix {
  log: Logger;
  signal: AbortSignal;
}

export async function checkImageCaches(
  config: ProviderConfig,
  api: DokployApi,
  snapshot: ProjectSnapshot,
  report: (c: Check) => Promise<void>,
  fix?: CacheFix,
): Promise<void> {
  const name = "image cache";
  const caches = await listImageCaches(api, snapshot).catch(() => null);
  if (!caches) {
    return await report({ ok: false, name, detail: "could not read the caches; run doctor again" });
  }
  if (!wantsImageCache({ config })) {
    await report({
      ok: true,
      name,
      detail: config.imageCache
        ? "not used (DOCKER_MODE=none: no engine in the machine pulls images)"
        : "off (IMAGE_CACHE=false: every machine pulls from Docker Hub; no prebuild registry either)",
    });
  } else if (caches.length === 0) {
    await report({
      ok: true,
      name,
      detail: "none yet; the first machine on each server creates that server's (one per server)",
    });
  }
  for (const c of caches) {
    const where = `server ${serverKey(c.serverId)}: ${c.appName}`;
    if (isFailed(c) && fix) {
      await report(await retryNow(config, api, c, fix));
    } else if (isFailed(c)) {
      await report({
        ok: false,
        name,
        detail: `${where} ${await failedDetail(api, c)}; ${FIX_HINT}`,
      });
    } else if (c.state === "Busy") {
      await report({ ok: true, name, detail: `${where} is being deployed` });
    } else if (c.state === "Running") {
      await report({
        ok: true,
        name,
        detail: `${where} running, stores ${formatKiB(c.sizeKiB)}, ${prebuildsDetail(config, c)}, ${
          agentsDetail(c)
        }, ${c.machines} machine(s) there`,
      });
    } else {
      await report({
        ok: false,
        name,
        detail:
          `${where} is ${c.state}: machines there pull from Docker Hub until it runs; deploy it again in Dokploy, or delete it with 'cleanup --yes' once no machine is there`,
      });
    }
  }
}

/** The prebuild registry beside a running cache, and what the user types to use it. */
function prebuildsDetail(config: ProviderConfig, c: ImageCacheInfo): string {
  if (c.prebuilds && !c.prebuilds.running) {
    return "its prebuild registry is not running (DevPod builds as without it; deploy the cache again in Dokploy, or 'doctor --fix' once it failed)";
  }
  if (c.prebuilds) {
    return `prebuild registry holds ${
      formatKiB(c.prebuilds.sizeKiB)
    } (devpod up … --prebuild-repository ${PREBUILD_REPOSITORY})`;
  }
  return wantsPrebuilds({ config })
    ? "no prebuild registry yet (the next create on this server adds it)"
    : "no prebuild registry (PREBUILDS=false)";
}

/** The agent cache beside a running cache: what it holds, or why machines go without it. */
function agentsDetail(c: ImageCacheInfo): string {
  if (!c.agents) return "no agent cache yet (the next create on this server adds it)";
  if (!c.agents.running) {
    return "its agent cache is not running (machines download DevPod's agent from GitHub; deploy the cache again in Dokploy)";
  }
  const held = c.agents.stored.length ? ` (${c.agents.stored.join(", ")})` : "";
  return `agent cache holds ${formatKiB(c.agents.sizeKiB)}${held}`;
}

/** Why, from its record, else from its last deploy's log (one or two calls). */
async function failedDetail(api: DokployApi, c: ImageCacheInfo): Promise<string> {
  const f = c.failure;
  if (f) {
    const times = f.attempts === 1 ? "once" : `${f.attempts} times in a row`;
    return `failed to deploy (${times}): ${f.reason}; machines there pull from Docker Hub; the first create after ${
      utcMinute(f.retryAt)
    } (${retryIn(f.retryAt)}) retries it`;
  }
  const outcome = await lastDeployOutcome(api, c.composeId).catch(() => null);
  const reason = outcome?.kind === "failed" ? outcome.reason : "its deploy log could not be read";
  return `failed to deploy: ${reason}; machines there pull from Docker Hub; the next create records this and retries it in 30 min`;
}

/**
 * `doctor --fix`: deploys the cache again with the compose file the current options give
 * (a corrected IMAGE_CACHE_IMAGE) and waits for it. Its record stays while it deploys, so
 * creates meanwhile go on without it; success clears it, failure records the new reason
 * and starts the back-off again.
 */
async function retryNow(
  config: ProviderConfig,
  api: DokployApi,
  c: ImageCacheInfo,
  fix: CacheFix,
): Promise<Check> {
  const name = "image cache (--fix)";
  const where = `server ${serverKey(c.serverId)}: ${c.appName}`;
  // The file these options give: with the prebuild registry or without.
  const fixed = { ...c, prebuilds: config.prebuilds, agents: true };
  try {
    const seen = new Set((await api.deployments(c.composeId)).map((d) => d.deploymentId));
    await api.updateCompose(c.composeId, { composeFile: cacheFileFor(config, PROVIDER_VERSION) });
    fix.log.info(`${where}: deploying it again now (${config.imageCacheImage})`);
    const deadline = Date.now() + FIX_WAIT_MS;
    await deployAndWait(
      { api, log: fix.log, deadline, signal: fix.signal },
      c.composeId,
      DEPLOY_TITLE,
      seen,
    );
    await writeFailure(api, fixed, PROVIDER_VERSION, null);
    return { ok: true, name, detail: `${where} deployed again: machines made from now on use it` };
  } catch (err) {
    if (!(err instanceof DeployFailedError)) {
      return {
        ok: false,
        name,
        detail: `${where}: the retry did not finish (${
          (err as Error).message
        }); run doctor --fix again`,
      };
    }
    const outcome = await lastDeployOutcome(api, c.composeId).catch(() => null);
    if (outcome?.kind !== "failed") {
      return { ok: false, name, detail: `${where} failed to deploy again; ${FIX_HINT}` };
    }
    await writeFailure(api, fixed, PROVIDER_VERSION, failureAt(1, outcome.at, outcome.reason))
      .catch(() => {}); // the next create records it
    return {
      ok: false,
      name,
      detail: `${where} failed to deploy again: ${outcome.reason}; ${FIX_HINT}`,
    };
  }
}
