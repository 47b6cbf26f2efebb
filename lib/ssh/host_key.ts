/**
 * What OpenSSH says when the machine's address presents a host key other than the
 * pinned one, and the one line we say instead. OpenSSH's own advice there
 * (`ssh-keygen -R …`) would delete the pin, the only thing that makes the refusal
 * possible: it is never passed on.
 */

/** OpenSSH's refusal of a host key that does not match known_hosts (exit 255). */
export const HOST_KEY_REFUSED =
  /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/;

/** Lines of OpenSSH's refusal that tell the user to replace or remove the pinned key. */
const UNPIN_ADVICE = /^\s*(remove with:|ssh-keygen .*-R |Add correct host key in )/;

export function isUnpinAdvice(line: string): boolean {
  return UNPIN_ADVICE.test(line);
}

/** One line naming the cause and the fix; it never suggests touching the pin. */
export function hostKeyRefusedMessage(host: string, port: number): string {
  return `the SSH server on ${host}:${port} presents a host key that is not this machine's pinned key (another service holds that port, or someone is in the middle); refusing to connect. Stop whatever else listens there and retry; keep the pinned key, it is what caught this`;
}
