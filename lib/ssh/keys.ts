/**
 * Per-machine keys, made with the system `ssh-keygen`: the client key DevPod logs in
 * with, and the machine's host key, generated here so it can be pinned before the
 * machine even exists (no trust-on-first-use).
 */
import { join } from "node:path";
import { ProviderError } from "../errors.ts";
import { writeFileAtomic } from "../fs.ts";
import { childEnv } from "../process.ts";

export interface KeyPair {
  privatePath: string;
  publicKey: string;
}

export const CLIENT_KEY = "id_ed25519";
export const HOST_KEY = "host_ed25519_key";
export const KNOWN_HOSTS = "known_hosts";

/** Returns the ed25519 key at `folder/name`, creating it (0600) when absent. */
export async function ensureKeyPair(
  folder: string,
  name: string,
  comment: string,
): Promise<KeyPair> {
  const privatePath = join(folder, name);
  try {
    const publicKey = (await Deno.readTextFile(`${privatePath}.pub`)).trim();
    await Deno.stat(privatePath);
    return { privatePath, publicKey };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  // Generate beside the target and rename, so a crash never leaves half a key.
  const tmp = `${privatePath}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", tmp],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: childEnv(),
  }).output().catch((err) => {
    throw new ProviderError(`cannot run ssh-keygen (${err.message}); install OpenSSH`);
  });
  if (!out.success) {
    throw new ProviderError(
      `ssh-keygen failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(`${tmp}.pub`, `${privatePath}.pub`);
  await Deno.rename(tmp, privatePath);
  const publicKey = (await Deno.readTextFile(`${privatePath}.pub`)).trim();
  return { privatePath, publicKey };
}

/** `[host]:port` as OpenSSH writes it in known_hosts for a non-22 port. */
export function knownHostsPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Pins exactly one host key for the machine's address. */
export async function writeKnownHosts(
  folder: string,
  host: string,
  port: number,
  hostPublicKey: string,
): Promise<string> {
  const [type, key] = hostPublicKey.split(/\s+/);
  const path = join(folder, KNOWN_HOSTS);
  await writeFileAtomic(path, `${knownHostsPattern(host, port)} ${type} ${key}\n`, 0o600);
  return path;
}

/** SHA256 fingerprint as ssh-keygen -l shows it (SHA256:base64-without-padding). */
export async function fingerprint(publicKey: string): Promise<string> {
  const blob = Uint8Array.from(atob(publicKey.split(/\s+/)[1] ?? ""), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", blob));
  return `SHA256:${btoa(String.fromCharCode(...digest)).replace(/=+$/, "")}`;
}
