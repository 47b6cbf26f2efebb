/**
 * Every machine of this provider in the configured Dokploy project, found by its
 * marker, with its container state — for `list` and `cleanup`.
 */
import YAML from "yaml";
import { hasBackupGuard } from "../backup/guard.ts";
import { cacheOfMirror } from "../cache/spec.ts";
import { cacheOfPrebuildAddress } from "../prebuild/spec.ts";
import type { ComposeStatus, DokployApi } from "../dokploy/api.ts";
import { type PreviewInfo, previewInfos } from "../preview/manage.ts";
import { ownerOf } from "../identity/ownership.ts";
import type { MarkedCompose, ProjectSnapshot } from "./project.ts";
import { mapStatus } from "./status.ts";

export interface MachineInfo {
  machineId: string;
  composeId: string;
  appName: string;
  state: string;
  /** Dokploy's deploy pipeline state of the service. */
  composeStatus: ComposeStatus;
  /** Containers Docker reports for it (0 may also be a Docker error: never alone proof). */
  containers: number;
  sshPort: number;
  serverId: string | null;
  createdAt: string | null;
  /** Its owner's email (`unknown` on a machine made before owners were recorded). */
  owner: string;
  /** Its owner's Dokploy user id (lib/identity); null: made before owners were recorded. */
  ownerId: string | null;
  /** The DevPod home it was made from (lib/devpod_home.ts homeOrigin), when recorded. */
  origin: string | null;
  cpus: string | null;
  memory: string | null;
  /** The image cache (its appName) this machine mirrors Docker Hub through, if any. */
  imageCache: string | null;
  /** It reaches that cache's prebuild registry as localhost:5151 (lib/prebuild). */
  prebuilds: boolean;
  /** Its compose file runs a backup guard (BACKUP_DESTINATION was set at its last start). */
  backups: boolean;
  /** Its preview URLs (lib/preview): the forwarder's ports joined with Dokploy's domains. */
  previews: PreviewInfo[];
}

/** The machines of a project snapshot, described (two calls each, in parallel). */
export async function machinesIn(
  api: DokployApi,
  { machines: marked }: ProjectSnapshot,
): Promise<MachineInfo[]> {
  const out = await Promise.all(marked.map((m) => describe(api, m)));
  return out.sort((a, b) => a.machineId.localeCompare(b.machineId));
}

async function describe(api: DokployApi, marked: MarkedCompose): Promise<MachineInfo> {
  const { compose: c, marker } = marked;
  const { machineId, sshPort } = marker;
  const [full, containers] = await Promise.all([
    api.composeOne(c.composeId),
    api.containers(c.appName, c.serverId ?? null),
  ]);
  const verdict = mapStatus(c, containers);
  const { cpus, memory, imageCache, prebuilds } = deployedSpec(full?.composeFile);
  return {
    machineId,
    composeId: c.composeId,
    appName: c.appName,
    state: "status" in verdict ? verdict.status : "Error",
    composeStatus: c.composeStatus,
    containers: containers.length,
    sshPort,
    serverId: c.serverId ?? null,
    createdAt: c.createdAt ?? null,
    owner: ownerOf(marked).label,
    ownerId: marker.ownerId ?? null,
    origin: marker.origin ?? null,
    cpus,
    memory,
    imageCache,
    prebuilds,
    backups: hasBackupGuard({ composeFile: full?.composeFile }),
    previews: full ? previewInfos(machineId, full) : [],
  };
}

/** What a machine's compose file asks for: its limits and the image cache it mirrors through. */
export function deployedSpec(
  composeFile: string | null | undefined,
): Pick<MachineInfo, "cpus" | "memory" | "imageCache" | "prebuilds"> {
  try {
    const m = YAML.parse(composeFile ?? "")?.services?.machine;
    return {
      cpus: m?.cpus != null ? String(m.cpus) : null,
      memory: m?.mem_limit != null ? String(m.mem_limit) : null,
      imageCache: cacheOfMirror(m?.environment?.DEVPOD_REGISTRY_MIRROR),
      prebuilds: cacheOfPrebuildAddress(m?.environment?.DEVPOD_PREBUILD_REGISTRY) !== null,
    };
  } catch {
    // a hand-edited file: unknown
    return { cpus: null, memory: null, imageCache: null, prebuilds: false };
  }
}
