/**
 * Basic-auth credentials for a preview URL: a generated user and password, and the
 * password's htpasswd hash in Apache's MD5 format (`$apr1$`), the one format both
 * Traefik's basicauth middleware and nginx's auth_basic (our test stand-in) accept.
 * Only the hash is ever stored (in the forwarder's labels); the password is shown once.
 */
import { createHash } from "node:crypto";

const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALNUM = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

export interface Credentials {
  user: string;
  password: string;
}

/** Uniform random characters of `alphabet` (rejection sampling: no modulo bias). */
function randomText(length: number, alphabet: string): string {
  let out = "";
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length) {
    for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < limit && out.length < length) out += alphabet[b % alphabet.length];
    }
  }
  return out;
}

/** A user `preview-xxxx` and a 24-character password (about 140 bits). */
export function generateCredentials(): Credentials {
  return {
    user: `preview-${randomText(4, "abcdefghijkmnpqrstuvwxyz23456789")}`,
    password: randomText(24, ALNUM),
  };
}

/** `user:$apr1$salt$hash`, one htpasswd line. */
export function htpasswdLine(user: string, password: string, salt = randomText(8, ITOA64)): string {
  return `${user}:${apr1(password, salt)}`;
}

/** Apache's MD5-crypt variant (magic `$apr1$`), as `htpasswd -m` and `openssl passwd -apr1`. */
export function apr1(password: string, salt: string): string {
  const magic = "$apr1$";
  const pw = new TextEncoder().encode(password);
  const s = new TextEncoder().encode(salt.slice(0, 8));
  const md5 = (...parts: Uint8Array[]) => {
    const h = createHash("md5");
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };
  const alt = md5(pw, s, pw);
  const ctx = createHash("md5");
  ctx.update(pw);
  ctx.update(new TextEncoder().encode(magic));
  ctx.update(s);
  for (let i = pw.length; i > 0; i -= 16) ctx.update(alt.subarray(0, Math.min(16, i)));
  for (let i = pw.length; i > 0; i >>= 1) {
    ctx.update(i & 1 ? new Uint8Array([0]) : pw.subarray(0, 1));
  }
  let final = new Uint8Array(ctx.digest());
  for (let i = 0; i < 1000; i++) {
    const parts: Uint8Array[] = [i & 1 ? pw : final];
    if (i % 3) parts.push(s);
    if (i % 7) parts.push(pw);
    parts.push(i & 1 ? final : pw);
    final = md5(...parts);
  }
  const to64 = (v: number, n: number) => {
    let out = "";
    for (; n > 0; n--, v >>= 6) out += ITOA64[v & 0x3f];
    return out;
  };
  let hash = "";
  for (const [a, b, c] of [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]]) {
    hash += to64((final[a] << 16) | (final[b] << 8) | final[c], 4);
  }
  hash += to64(final[11], 2);
  return `${magic}${new TextDecoder().decode(s)}$${hash}`;
}
