/**
 * `create` (design §5): keys → project → server (DOKPLOY_SERVER_ID; placement for auto)
 * → port → compose service → deploy → SSH with the pinned key. Idempotent (a re-run
 * adopts the existing machine), bounded by READY_TIMEOUT, and on failure it removes
 * what it made.
 */
import { join } from "node:path";
import { resolveDestination } from "../backup/destination.ts";
import { backupApi, scheduleBackups } from "../backup/register.ts";
import { settleImageCache } from "../cache/ensure.ts";
import { removeIfExists } from "../fs.ts";
import { resolveTarget } from "../servers/target.ts";
import { CLIENT_KEY, ensureKeyPair, HOST_KEY } from "../ssh/keys.ts";
import { waitForMachine } from "./boot_watch.ts";
import { SSH_USER } from "./compose.ts";
import { checkAborted, discardService, makeService, rollbackCreate } from "./create_service.ts";
import { deployMachine } from "./deploy_retry.ts";
import type { MachineDeps } from "./deps.ts";
import { locateByState } from "./locate.ts";
import { assertMine, ownerRecord, PICK_ANOTHER, pickMachine } from "../identity/ownership.ts";
import { ensureProject, readProjectSnapshot } from "./project.ts";
import { publishSpec } from "./spec.ts";
import { upExisting } from "./start.ts";
import { STATE_FILE } from "./state.ts";

/** How often a create under `auto` may move its undeployed service to a better server. */
const MAX_MOVES = 3;

export async function createMachine(d: MachineDeps): Promise<void> {
  const started = Date.now();
  const deadline = started + d.config.readyTimeoutMs;
  const byState = await locateByState(d);
  if (byState?.compose) {
    d.log.info(`machine ${d.machine.machineId} already exists in Dokploy; adopting it`);
    return await upExisting(d, byState.state, byState.compose, deadline);
  }
  if (byState) {
    d.log.warn("local state points to a Dokploy service that no longer exists; creating anew");
    await removeIfExists(join(d.machine.machineFolder, STATE_FILE));
  }
  // The one project read of this run: finds a machine whose state.json was lost, the
  // project's environment and the ports already claimed.
  const [snapshot, me] = await Promise.all([
    readProjectSnapshot(d.api, d.config.projectName),
    d.api.identity(),
  ]);
  const listed = pickMachine(snapshot.machines, d.machine.machineId, me);
  // Another owner's machine of this id is never read, keyed or deployed: refused here.
  if (listed?.relation === "theirs") {
    assertMine(listed.machine, me, "create", { fix: PICK_ANOTHER });
  }
  const existing = listed && await d.api.composeOne(listed.machine.compose.composeId);
  // Adopted only by who proves it holds the machine's keys (adopt.ts says so once it has).
  if (existing) return await upExisting(d, null, existing, deadline);

  const folder = d.machine.machineFolder;
  await Deno.mkdir(folder, { recursive: true, mode: 0o700 });
  const clientKey = await ensureKeyPair(folder, CLIENT_KEY, `devpod-${d.machine.machineId}`);
  const hostKey = await ensureKeyPair(folder, HOST_KEY, `devpod-host-${d.machine.machineId}`);
  // A destination that does not exist fails here, before anything is made.
  if (d.config.backup) await resolveDestination(backupApi(d), d.config.backup.destination);
  const project = await ensureProject(d, snapshot);
  const keys = { clientKey, hostKey };
  let target = await resolveTarget(d, project.snapshot);
  const owner = await ownerRecord(me, d.machine.machineFolder);
  let made = await makeService(d, project, target, keys, owner);
  // auto: a parallel create may have gone to the same server; the re-read the port check
  // made shows it. Placement again, counting only the machines made before ours: a
  // different answer moves ours there before anything was deployed. Two parallel movers
  // may land together: the newer one looks once more.
  for (let move = 0; move < MAX_MOVES; move++) {
    const better = await target.recheck?.(made.snapshot(), made.compose).catch(() => null);
    if (!better) break;
    await discardService(d, made);
    target = better;
    made = await makeService(d, { ...project, snapshot: made.snapshot() }, target, keys, owner);
  }
  const { compose, state, cachePlan, readClaims } = made;
  try {
    // The port check's re-read also settles parallel first caches (deployed before the
    // machine) and who retries a failed one (after it).
    const cache = await settleImageCache(d, cachePlan, made.snapshot(), compose);
    const settled = cache.appName;
    const prebuilds = settled !== null && cache.prebuilds;
    if (settled !== (state.imageCache ?? null) || prebuilds !== (state.prebuilds === true)) {
      if (settled) state.imageCache = settled;
      else delete state.imageCache;
      if (prebuilds) state.prebuilds = true;
      else delete state.prebuilds;
      await publishSpec(d, state, clientKey.publicKey);
    }
    checkAborted(d.signal);
    await deployMachine(d, state, clientKey.publicKey, deadline, {
      title: "devpod: create machine",
      deployments: [], // a service this run created has none yet
      readClaims,
    });
    // What is left to do about the cache runs beside the boot: the machine never waits for it.
    const booted = waitForMachine(d, state, deadline);
    const [boot] = await Promise.allSettled([
      booted,
      cache.afterDeploy(state.imageCache ?? null, booted),
    ]);
    if (boot.status === "rejected") throw boot.reason;
    await scheduleBackups(d, state);
    d.log.info(
      `machine ready at ${SSH_USER}@${state.sshHost}:${state.sshPort} in ${
        ((Date.now() - started) / 1000).toFixed(1)
      }s`,
    );
  } catch (err) {
    await rollbackCreate(d, compose.composeId);
    throw err;
  }
}
