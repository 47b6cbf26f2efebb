/** The SSH endpoint of a machine, from its state and its folder's key files. */
import { join } from "node:path";
import type { MachineContext } from "../context/machine.ts";
import type { SshTarget } from "../ssh/argv.ts";
import { CLIENT_KEY, KNOWN_HOSTS } from "../ssh/keys.ts";
import type { MachineState } from "./state.ts";

export function sshTarget(machine: MachineContext, state: MachineState): SshTarget {
  return {
    host: state.sshHost,
    port: state.sshPort,
    user: state.sshUser,
    identityFile: join(machine.machineFolder, CLIENT_KEY),
    knownHostsFile: join(machine.machineFolder, KNOWN_HOSTS),
  };
}
