/**
 * `doctor`'s view of the shared image caches: one line per server's cache (running,
 * what it stores, how many machines are on its server), and what the target server
 * will get. A cache that is down never breaks a machine, but it is worth fixing: every
 * pull then goes to Docker Hub again.
 */
import type { ProviderConfig } from "../config.ts";
import type { DokployApi } from "../dokploy/api.ts";
import type { ProjectSnapshot } from "../machine/project.ts";
import type { Check } from "../servers/doctor.ts";
import { wantsImageCache } from "./ensure.ts";
import { formatKiB, listImageCaches } from "./inventory.ts";
import { serverKey } from "./spec.ts";

export async function checkImageCaches(
  config: ProviderConfig,
  api: DokployApi,
  snapshot: ProjectSnapshot,
  report: (c: Check) => Promise<void>,
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
        : "off (IMAGE_CACHE=false: every machine pulls from Docker Hub)",
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
    if (c.state === "Busy") {
      await report({ ok: true, name, detail: `${where} is being deployed` });
    } else if (c.state === "Running") {
      await report({
        ok: true,
        name,
        detail: `${where} running, stores ${formatKiB(c.sizeKiB)}, ${c.machines} machine(s) there`,
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
