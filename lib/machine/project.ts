/** The Dokploy project that holds the machines, and its default environment. */
import { ProviderError, StateError } from "../errors.ts";
import type { MachineDeps } from "./deps.ts";

/**
 * The project and its default environment, created when missing. Parallel first
 * creates may each make one: all converge on the oldest and drop their own extra.
 */
export async function ensureProject(
  d: MachineDeps,
): Promise<{ projectId: string; environmentId: string }> {
  const named = () =>
    d.api.projects().then((all) =>
      all.filter((p) => p.name === d.config.projectName)
        .sort((a, b) =>
          String(a.createdAt ?? "").localeCompare(String(b.createdAt ?? "")) ||
          a.projectId.localeCompare(b.projectId)
        )
    );
  let candidates = await named();
  if (candidates.length === 0) {
    d.log.info(`creating Dokploy project "${d.config.projectName}"`);
    const mine = await d.api.createProject(
      d.config.projectName,
      "DevPod workspaces (managed by devpod-provider-dokploy)",
    );
    candidates = await named();
    const canonical = candidates[0] ?? mine;
    if (canonical.projectId !== mine.projectId) {
      await d.api.removeProject(mine.projectId).catch(() => {});
    }
  }
  const project = await d.api.project(candidates[0]?.projectId ?? "");
  if (!project) {
    throw new StateError(`Dokploy project "${d.config.projectName}" vanished; run again`);
  }
  const envs = project.environments ?? [];
  const env = envs.find((e) => e.isDefault) ?? envs.find((e) => e.name === "production") ?? envs[0];
  if (!env) {
    throw new ProviderError(
      `Dokploy project "${project.name}" has no environment; add one in Dokploy or pick another DOKPLOY_PROJECT_NAME`,
    );
  }
  return { projectId: project.projectId, environmentId: env.environmentId };
}
