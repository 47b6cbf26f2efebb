/**
 * Who the API key is, as Dokploy vouches for it (`user.get`: the caller's member row in the
 * key's organisation). The owner of a machine is this user, never text from the laptop.
 *
 * Learnt once per key and kept in a small file keyed by a hash of the server URL and the
 * key (never the key itself), so DevPod's hot paths (create, status) add no call: `init`
 * writes it, and the first verb that needs it without one makes the call once.
 */
import { join } from "node:path";
import { z } from "zod";
import type { Env } from "../context/machine.ts";
import { readTextIfExists, writeFileAtomic } from "../fs.ts";

export type Role = "owner" | "admin" | "member";

export interface Identity {
  userId: string;
  email: string;
  role: Role;
  organizationId: string;
}

/** Owners and admins pass every access check in Dokploy, and may act across owners here. */
export function isPrivileged(me: Pick<Identity, "role">): boolean {
  return me.role === "owner" || me.role === "admin";
}

/** What a machine's marker can carry (lib/machine/naming.ts); better-auth ids fit it. */
const USER_ID = /^[A-Za-z0-9._-]{1,64}$/;

const MemberRow = z.looseObject({
  role: z.string(),
  userId: z.string().regex(USER_ID),
  organizationId: z.string().nullish(),
  user: z.looseObject({ id: z.string().nullish(), email: z.string().nullish() }).nullish(),
});

/** `user.get`'s answer as an Identity; a custom role counts as a member (the least). */
export function identityFromMember(value: unknown): Identity | null {
  const row = MemberRow.safeParse(value);
  if (!row.success) return null;
  const r = row.data;
  const role: Role = r.role === "owner" || r.role === "admin" ? r.role : "member";
  return {
    userId: r.userId,
    email: r.user?.email ?? r.userId,
    role,
    organizationId: r.organizationId ?? "",
  };
}

const Cached = z.object({
  userId: z.string().min(1),
  email: z.string(),
  role: z.enum(["owner", "admin", "member"]),
  organizationId: z.string(),
});

/**
 * Where the identity file lives: the user's cache folder. Not PROVIDER_FOLDER: DevPod
 * gives it to machine verbs but not to `init`, which is where the identity is learnt, and
 * a human verb run by hand has neither.
 */
export function identityDir(env: Env): string {
  const cache = env.XDG_CACHE_HOME?.trim() ||
    join(env.HOME ?? env.USERPROFILE ?? ".", ".cache");
  return join(cache, "devpod-provider-dokploy", "identity");
}

async function keyHash(serverUrl: string, token: string): Promise<string> {
  const bytes = new TextEncoder().encode(`${serverUrl}\n${token}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.subarray(0, 12), (b) => b.toString(16).padStart(2, "0")).join("");
}

export interface IdentityStore {
  read(): Promise<Identity | null>;
  write(identity: Identity): Promise<void>;
}

/** The identity file of one server URL + key. */
export function identityStore(dir: string, serverUrl: string, token: string): IdentityStore {
  const file = async () => join(dir, `${await keyHash(serverUrl, token)}.json`);
  return {
    async read() {
      const text = await readTextIfExists(await file()).catch(() => null);
      if (!text) return null;
      try {
        const parsed = Cached.safeParse(JSON.parse(text));
        return parsed.success ? parsed.data : null;
      } catch {
        return null; // a torn or hand-edited file: asked again
      }
    },
    async write(identity) {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(await file(), JSON.stringify(identity) + "\n");
    },
  };
}
