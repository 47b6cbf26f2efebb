/**
 * One-time host preparation for machines that run as host processes: the `devpod`
 * login user and the directories sshd and the machine namespaces need.
 */

export interface HostUser {
  uid: number;
  gid: number;
}

export const MACHINE_USER = "devpod";
export const MACHINE_HOME = "/home/devpod";
/** Inside each machine's mount namespace its config dir is bound here (see sshd_config.ts). */
export const MACHINE_ETC = "/run/dokploy-emulator-machine";

let ready: Promise<HostUser> | undefined;

/** Idempotent, and safe when several emulators (test processes) race to do it. */
export function ensureHost(): Promise<HostUser> {
  ready ??= prepare().catch((e) => {
    ready = undefined;
    throw e;
  });
  return ready;
}

async function prepare(): Promise<HostUser> {
  for (let attempt = 1;; attempt++) {
    try {
      if (!findUser()) {
        await run("useradd", [
          "--no-create-home",
          "--home-dir",
          MACHINE_HOME,
          "--shell",
          "/bin/sh",
          MACHINE_USER,
        ]);
      }
      const user = findUser();
      if (!user) throw new Error(`user ${MACHINE_USER} still missing after useradd`);
      // sshd with `UsePAM no` refuses locked ("!") accounts; "*" = no password, not locked.
      if (passwordLocked()) await run("usermod", ["-p", "*", MACHINE_USER]);
      for (const dir of [MACHINE_HOME, "/run/sshd", MACHINE_ETC]) {
        await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
      }
      return user;
    } catch (e) {
      // Another process may hold the passwd/shadow lock or have just created the user.
      if (attempt >= 30) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
    }
  }
}

function findUser(): HostUser | undefined {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n")
    .find((l) => l.startsWith(`${MACHINE_USER}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function passwordLocked(): boolean {
  const line = Deno.readTextFileSync("/etc/shadow").split("\n")
    .find((l) => l.startsWith(`${MACHINE_USER}:`));
  return line?.split(":")[1]?.startsWith("!") ?? false;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}
