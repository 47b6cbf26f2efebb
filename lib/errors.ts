/**
 * One error taxonomy for the provider. `mod.ts` maps each class to an exit code and
 * prints its message as one line on stderr; nothing else prints stack traces.
 */

/** Base class: `message` is one line a user can act on. */
export class ProviderError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A bad or missing option or DevPod variable. */
export class ConfigError extends ProviderError {
  override readonly exitCode = 2;
}

/** The Dokploy API answered with an error, or could not be reached. */
export class DokployError extends ProviderError {
  constructor(
    message: string,
    readonly procedure: string,
    readonly status: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  /** 0 when the server was not reached at all (DNS, refused, timeout). */
  get transport(): boolean {
    return this.status === undefined;
  }
}

/** The Dokploy server is older than what the provider supports. */
export class UnsupportedVersionError extends ProviderError {}

/** The machine did not become reachable over SSH in time. */
export class MachineNotReadyError extends ProviderError {}

/** The machine's container exited or keeps restarting before SSH answered (its bootstrap failed). */
export class MachineBootError extends ProviderError {}

/** The machine's deploy failed in Dokploy; carries the tail of its log. */
export class DeployFailedError extends ProviderError {}

/** The SSH host key on the machine's port is not the one this provider pinned. */
export class HostKeyMismatchError extends ProviderError {}

/** The local machine state is missing or does not match Dokploy. */
export class StateError extends ProviderError {}

/** The user interrupted the command (SIGINT/SIGTERM). */
export class InterruptedError extends ProviderError {
  override readonly exitCode = 130;
}
