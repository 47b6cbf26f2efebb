/**
 * A cached minimal Debian bookworm root file system for running the machine bootstrap
 * in isolation (chroot + PID namespace), so its real first-boot path (apt installs
 * openssh-server and sudo) is tested without Docker.
 *
 * Built once with `debootstrap --variant=minbase` into `.cache/rootfs/bookworm` and reused.
 * Prebuild it (e.g. in CI) with `deno run -A scripts/rootfs.ts`.
 */

/** Where the cached root fs lives (ignored by git through `.cache/`). */
export const ROOTFS_DIR = decodeURIComponent(
  new URL("../../.cache/rootfs/bookworm", import.meta.url).pathname,
);

/** Written last inside a finished root fs: a directory without it is an interrupted build. */
const MARKER = ".devpod-rootfs-complete";
const MIRROR = "http://deb.debian.org/debian";

/** Whether the cached root fs at `dir` is complete. */
export async function rootfsReady(dir = ROOTFS_DIR): Promise<boolean> {
  try {
    await Deno.stat(`${dir}/${MARKER}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns `dir`, building it first when absent. The build goes to a temporary directory
 * beside it and is renamed into place only when complete, so a crash or a concurrent
 * build never leaves a half-made root fs that later runs would trust.
 */
export async function ensureRootfs(
  dir = ROOTFS_DIR,
  log: (line: string) => void = (l) => console.error(l),
): Promise<string> {
  if (await rootfsReady(dir)) return dir;
  const parent = dir.slice(0, dir.lastIndexOf("/"));
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: ".bookworm-build-" });
  try {
    const started = Date.now();
    log(`rootfs: debootstrap --variant=minbase bookworm → ${dir} (about a minute, once)`);
    const out = await new Deno.Command("debootstrap", {
      args: ["--variant=minbase", "bookworm", tmp, MIRROR],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      throw new Error(`debootstrap failed (exit ${out.code}):\n${text.slice(-4000)}`);
    }
    // apt inside the chroot resolves the mirror through the host's resolver.
    await Deno.copyFile("/etc/resolv.conf", `${tmp}/etc/resolv.conf`);
    await Deno.writeTextFile(`${tmp}/${MARKER}`, `${new Date().toISOString()}\n`);
    try {
      await Deno.rename(tmp, dir);
    } catch (err) {
      // Another process finished first: use its copy, drop ours (removed in finally).
      if (!(await rootfsReady(dir))) throw err;
    }
    log(`rootfs: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return dir;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
