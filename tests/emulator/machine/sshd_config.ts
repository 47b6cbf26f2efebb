/**
 * The sshd_config of an emulated machine. Paths are as seen inside the machine's
 * mount namespace: its config dir is bound onto a root-owned path under /run, so
 * `StrictModes yes` accepts the authorized_keys file even when the emulator's data
 * dir lives below a world-writable directory such as /tmp.
 */

export interface SshdConfigOptions {
  /** The machine's server address (127.0.0.1 on the Dokploy host, 127.0.0.N on a server). */
  listenAddress: string;
  port: number;
  hostKeyPath: string;
  authorizedKeysPath: string;
  user: string;
}

export function renderSshdConfig(o: SshdConfigOptions): string {
  return [
    "# Written by the Dokploy emulator for one machine.",
    `ListenAddress ${o.listenAddress}`,
    `Port ${o.port}`,
    `HostKey ${o.hostKeyPath}`,
    `AuthorizedKeysFile ${o.authorizedKeysPath}`,
    `AllowUsers ${o.user}`,
    "PermitRootLogin no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "PidFile none",
    "AllowTcpForwarding yes",
    "StrictModes yes",
    "LogLevel INFO",
    "MaxStartups 64:30:128",
    "MaxSessions 64",
    "",
  ].join("\n");
}
