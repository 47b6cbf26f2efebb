/**
 * Dokploy version support (design §7): environments arrived in v0.25.0, `x-api-key`
 * in v0.19.0. Older servers are refused with the version they would need.
 */
import { DokployError, UnsupportedVersionError } from "../errors.ts";
import type { DokployApi } from "./api.ts";
import { DokployClient } from "./client.ts";

export const MIN_SUPPORTED = "v0.25.0";

/** "v0.30.2" → [0, 30, 2]; null when it is not a version. */
export function parseVersion(text: string): [number, number, number] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a) ?? [0, 0, 0];
  const pb = parseVersion(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

export function assertSupported(version: string): void {
  if (!parseVersion(version)) {
    throw new UnsupportedVersionError(
      `Dokploy reported version "${version}", which is not a version this provider understands; it needs ${MIN_SUPPORTED} or newer`,
    );
  }
  if (compareVersions(version, MIN_SUPPORTED) < 0) {
    throw new UnsupportedVersionError(
      `Dokploy ${version} is too old: this provider needs ${MIN_SUPPORTED} or newer (projects with environments); upgrade Dokploy`,
    );
  }
}

/**
 * Reads and checks the server version. On a 401, asks once more the pre-v0.19 way
 * (Bearer) so a too-old server is named as such instead of blaming the key.
 */
export async function detectVersion(api: DokployApi): Promise<string> {
  let version: string;
  try {
    version = await api.version();
  } catch (err) {
    if (err instanceof DokployError && err.status === 401) {
      const legacy = await probeBearer(api.client);
      if (legacy) {
        throw new UnsupportedVersionError(
          `Dokploy ${legacy} only accepts the old Bearer tokens (before v0.19); this provider needs ${MIN_SUPPORTED} or newer: upgrade Dokploy`,
        );
      }
    }
    throw err;
  }
  assertSupported(version);
  return version;
}

async function probeBearer(client: DokployClient): Promise<string | null> {
  try {
    const probe = new DokployClient({
      baseUrl: client.baseUrl,
      token: client.tokenForProbe(),
      auth: "bearer",
      attempts: 1,
      timeoutMs: 10_000,
    });
    const v = await probe.query<unknown>("settings.getDokployVersion");
    return typeof v === "string" ? v : null;
  } catch {
    return null;
  }
}
