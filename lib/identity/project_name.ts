/**
 * DOKPLOY_PROJECT_NAME may hold `{user}`: each person's machines then live in a project of
 * their own (`devpod-{user}` → `devpod-alice`), which Dokploy's own access control keeps
 * apart — a member sees only the projects it created or was given.
 */
import type { DokployApi } from "../dokploy/api.ts";
import type { Identity } from "./identity.ts";

export const USER_PLACEHOLDER = "{user}";

/** A placeholder other than {user}: the option's one-line problem, or null. */
export function projectNameProblem(template: string): string | null {
  const other = template.replaceAll(USER_PLACEHOLDER, "").match(/\{[^}]*\}/);
  return other ? `has ${other[0]}; the only placeholder is ${USER_PLACEHOLDER}` : null;
}

/** The caller's name in a project name: the email's local part, lower-case, dashes for the rest. */
export function userSlug(me: Pick<Identity, "email" | "userId">): string {
  const local = me.email.includes("@") ? me.email.slice(0, me.email.indexOf("@")) : me.email;
  const slug = local.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return slug || me.userId.toLowerCase();
}

/** The project name with {user} filled in; asks who the key is only when there is one. */
export async function resolveProjectName(api: DokployApi, template: string): Promise<string> {
  if (!template.includes(USER_PLACEHOLDER)) return template;
  return template.replaceAll(USER_PLACEHOLDER, userSlug(await api.identity()));
}
