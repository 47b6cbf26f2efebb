/** Where the contributor tooling reads and writes, and the names it uses. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };

/** Absolute path of the repository root (no trailing separator). */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/[\\/]$/, "");

/**
 * GitHub `owner/name` the committed provider.yaml points at. A placeholder until the
 * repository's home is final; releases take the real one from `--repo`.
 */
export const REPOSITORY = "OWNER/devpod-provider-dokploy";

/** deno.json's version with a leading `v`: the release tag the committed yaml points at. */
export const PROJECT_VERSION = `v${denoJson.version}`;

/** Name of the local development provider, so it never collides with a released `dokploy`. */
export const DEV_PROVIDER_NAME = "dokploy-dev";

export const repoPath = (...parts: string[]): string => join(REPO_ROOT, ...parts);
export const COMMITTED_PROVIDER_YAML = repoPath("provider.yaml");
export const README = repoPath("README.md");
export const DEFAULT_ENV_FILE = repoPath(".env");
export const DEV_CACHE_DIR = repoPath(".cache", "dev-provider");
