/**
 * The host name of a new preview URL, and whether it gets HTTPS: `--host`, else a name
 * under PREVIEW_DOMAIN, else one Dokploy generates (sslip.io on the server's IP, which
 * resolves without any DNS of the user's).
 */
import { isHostName } from "../config.ts";
import { ConfigError } from "../errors.ts";

export interface HostChoice {
  host: string;
  /** Let's Encrypt can issue a certificate for it: a public name. */
  https: boolean;
}

/** `<machine>-<port>.<domain>`, the machine id cut so the label stays within 63. */
export function hostUnder(domain: string, machineId: string, port: number): string {
  const tail = `-${port}`;
  const head = machineId.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63 - tail.length)
    .replace(/-+$/, "");
  return `${head}${tail}.${domain}`;
}

export function checkHost(host: string): string {
  const h = host.trim().toLowerCase().replace(/\.$/, "");
  if (!isHostName(h) || !h.includes(".")) {
    throw new ConfigError(
      `--host "${host}" is not a host name; use a full name such as app.dev.example.com`,
    );
  }
  return h;
}

/**
 * Whether a generated sslip.io name points at a public address: Let's Encrypt must reach
 * the server to issue a certificate, which a private or loopback address never allows.
 */
export function isPublicSslip(host: string): boolean {
  const m = /-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})\.sslip\.io$/.exec(host);
  if (!m) return true; // not an IPv4 sslip.io name: assume a real DNS name
  const [a, b] = [Number(m[1]), Number(m[2])];
  const privateOrLocal = a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127);
  return !privateOrLocal;
}
