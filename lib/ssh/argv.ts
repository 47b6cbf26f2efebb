/**
 * The one place that builds `ssh` command lines: pinned host key, per-machine key,
 * no TTY, no password prompts, no user ssh config that could change the transport.
 */

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
}

export interface SshArgvOptions {
  /** Seconds for the TCP connect + handshake. */
  connectTimeoutSec?: number;
  /** Keep-alives so a dead link ends the tunnel instead of hanging it. */
  serverAliveSec?: number;
}

/** Arguments for `ssh`, ending with the target; append the remote command after. */
export function sshArgv(t: SshTarget, opts: SshArgvOptions = {}): string[] {
  const o = (kv: string) => ["-o", kv];
  return [
    "-T", // never a TTY: it would corrupt DevPod's binary protocol
    "-F",
    "none", // the user's ~/.ssh/config must not redirect or alter the tunnel
    "-i",
    t.identityFile,
    ...o("IdentitiesOnly=yes"),
    ...o("IdentityAgent=none"),
    ...o("BatchMode=yes"),
    ...o("PasswordAuthentication=no"),
    ...o("KbdInteractiveAuthentication=no"),
    ...o("StrictHostKeyChecking=yes"),
    ...o(`UserKnownHostsFile=${t.knownHostsFile}`),
    ...o(`GlobalKnownHostsFile=${Deno.build.os === "windows" ? "NUL" : "/dev/null"}`),
    ...o("UpdateHostKeys=no"),
    ...o("CheckHostIP=no"),
    ...o("LogLevel=ERROR"),
    ...o(`ConnectTimeout=${opts.connectTimeoutSec ?? 20}`),
    ...o(`ServerAliveInterval=${opts.serverAliveSec ?? 30}`),
    ...o("ServerAliveCountMax=4"),
    "-p",
    String(t.port),
    "-l",
    t.user,
    t.host,
  ];
}
