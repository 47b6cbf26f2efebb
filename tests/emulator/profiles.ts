/** Dokploy version profiles: the wire differences between releases (dokploy-api.md §3). */
import type { JsonSchema } from "./schema.ts";

export type DokployVersion = "v0.30.2" | "v0.25.0" | "v0.24.0" | "v0.18.4";

export interface Profile {
  version: DokployVersion;
  /** v0.25+: environments exist; compose.create takes environmentId, not projectId. */
  environments: boolean;
  /** v0.29+: compose.search and compose.readLogs exist. */
  composeSearch: boolean;
  /** ≤ v0.18: `Authorization: Bearer <token>`; later: `x-api-key`. */
  auth: "x-api-key" | "bearer";
}

const PROFILES: Record<DokployVersion, Profile> = {
  "v0.30.2": { version: "v0.30.2", environments: true, composeSearch: true, auth: "x-api-key" },
  "v0.25.0": { version: "v0.25.0", environments: true, composeSearch: false, auth: "x-api-key" },
  "v0.24.0": { version: "v0.24.0", environments: false, composeSearch: false, auth: "x-api-key" },
  "v0.18.4": { version: "v0.18.4", environments: false, composeSearch: false, auth: "bearer" },
};

export function profileFor(version: DokployVersion = "v0.30.2"): Profile {
  const profile = PROFILES[version];
  if (!profile) {
    throw new Error(`unknown Dokploy version ${version}; use one of ${Object.keys(PROFILES)}`);
  }
  return profile;
}

/** False for procedures that this release does not have (→ 404 like an unknown route). */
export function hasProcedure(profile: Profile, procedure: string): boolean {
  const p = procedure.toLowerCase();
  if (p.startsWith("environment.")) return profile.environments;
  if (p === "compose.search" || p === "compose.readlogs") return profile.composeSearch;
  return true;
}

/**
 * The input schema of a procedure in this release. The OpenAPI is v0.30.2's; before
 * environments (≤ v0.24) compose.create took `projectId` instead of `environmentId`.
 */
export function inputSchema(
  profile: Profile,
  procedure: string,
  schema: JsonSchema | null,
): JsonSchema | null {
  if (profile.environments || procedure.toLowerCase() !== "compose.create" || !schema) {
    return schema;
  }
  const { environmentId: _dropped, ...properties } = schema.properties ?? {};
  return {
    ...schema,
    properties: { ...properties, projectId: { type: "string", minLength: 1 } },
    required: (schema.required ?? []).map((r) => r === "environmentId" ? "projectId" : r),
  };
}
