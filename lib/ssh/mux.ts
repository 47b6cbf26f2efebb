/**
 * SSH connection reuse (OpenSSH ControlMaster). DevPod opens many `command` tunnels
 * per workspace; reusing one authenticated connection saves a full handshake each
 * time. The socket lives in a private 0700 directory we own — never a predictable
 * path in a shared /tmp that another user could pre-create.
 */
import { join } from "node:path";
import { childEnv } from "../process.ts";

/** How long an idle master stays up; short, since it counts as a session for idle stop. */
export const CONTROL_PERSIST_SEC = 15;

function privateDir(): string | null {
  if (Deno.build.os === "windows") return null; // Windows OpenSSH has no ControlMaster
  const uid = Deno.uid();
  const dir = join(Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", `devpod-dokploy-${uid}`);
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) return null;
  }
  try {
    const st = Deno.lstatSync(dir);
    // Someone else's directory, a symlink, or group/world access: do not reuse.
    if (!st.isDirectory || st.uid !== uid || ((st.mode ?? 0) & 0o077) !== 0) return null;
  } catch {
    return null;
  }
  return dir;
}

async function socketName(machineFolder: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(machineFolder)),
  );
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `-o` options enabling reuse for this machine, or [] where reuse is unsafe/off. */
export async function muxOptions(machineFolder: string, enabled: boolean): Promise<string[]> {
  const dir = enabled ? privateDir() : null;
  if (!dir) return [];
  return [
    "-o",
    "ControlMaster=auto",
    "-o",
    `ControlPath=${join(dir, await socketName(machineFolder))}`,
    "-o",
    `ControlPersist=${CONTROL_PERSIST_SEC}`,
  ];
}

/** Ends this machine's master connection, if any (stop/delete): best effort. */
export async function closeMux(machineFolder: string, targetArgv: string[]): Promise<void> {
  const opts = await muxOptions(machineFolder, true);
  if (opts.length === 0) return;
  await new Deno.Command("ssh", {
    args: [...opts, "-O", "exit", ...targetArgv],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    clearEnv: true,
    env: childEnv(),
  }).output().catch(() => {});
}
