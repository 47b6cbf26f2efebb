/**
 * Dokploy's users, as far as the API shows them (v0.30.2, dokploy-api.md §10): one
 * organisation, members with a role (owner/admin/member), API keys that act as their user,
 * and for a member the projects, environments and services it may see plus the legacy
 * `can…` grants (`services/permission.ts` getLegacyOverrides). The emulator's first token
 * is the organisation's owner.
 */
import { newId, now, ORGANIZATION_ID } from "./store.ts";

export type Role = "owner" | "admin" | "member";

/** What a member may do beyond the static `member` role (the legacy overrides). */
export interface Grants {
  canCreateProjects?: boolean;
  canDeleteProjects?: boolean;
  canCreateServices?: boolean;
  canDeleteServices?: boolean;
  canAccessToDocker?: boolean;
}

/** A `member` row as `user.get` answers it (the columns the provider reads, and some). */
export interface MemberRow extends Required<Grants> {
  id: string;
  userId: string;
  organizationId: string;
  role: Role;
  createdAt: string;
  accessedProjects: string[];
  accessedEnvironments: string[];
  accessedServices: string[];
  user: { id: string; email: string; firstName: string; lastName: string };
}

export interface NewUser {
  email: string;
  role: Role;
  grants?: Grants;
}

export class Team {
  readonly members = new Map<string, MemberRow>();
  readonly #keys = new Map<string, string>();

  constructor(ownerToken: string) {
    this.add({ email: "owner@dokploy.test", role: "owner" }, ownerToken);
  }

  /** A user of the organisation and an API key of theirs. */
  add(user: NewUser, token = newId(32)): { userId: string; token: string; email: string } {
    const userId = newId(32);
    const g = user.grants ?? {};
    this.members.set(userId, {
      id: newId(),
      userId,
      organizationId: ORGANIZATION_ID,
      role: user.role,
      createdAt: now(),
      accessedProjects: [],
      accessedEnvironments: [],
      accessedServices: [],
      canCreateProjects: g.canCreateProjects ?? false,
      canDeleteProjects: g.canDeleteProjects ?? false,
      canCreateServices: g.canCreateServices ?? false,
      canDeleteServices: g.canDeleteServices ?? false,
      canAccessToDocker: g.canAccessToDocker ?? false,
      user: { id: userId, email: user.email, firstName: "", lastName: "" },
    });
    this.#keys.set(token, userId);
    return { userId, token, email: user.email };
  }

  /** The member row an API key acts as; null for an unknown key (401). */
  callerOf(token: string | undefined): MemberRow | null {
    const userId = token === undefined ? undefined : this.#keys.get(token);
    return userId ? this.members.get(userId) ?? null : null;
  }

  /** What an admin does in the UI: gives a member access to projects, environments, services. */
  grant(
    userId: string,
    access: { projects?: string[]; environments?: string[]; services?: string[] },
  ) {
    const m = this.members.get(userId);
    if (!m) throw new Error(`no user ${userId}`);
    const add = (list: string[], ids: string[] = []) => {
      for (const id of ids) if (!list.includes(id)) list.push(id);
    };
    add(m.accessedProjects, access.projects);
    add(m.accessedEnvironments, access.environments);
    add(m.accessedServices, access.services);
  }
}

export function isPrivileged(m: Pick<MemberRow, "role">): boolean {
  return m.role === "owner" || m.role === "admin";
}
