/** The few `devpod` CLI calls the contributor tooling makes, found on PATH. */
import { delimiter, join } from "node:path";

/** Absolute path of an executable on PATH, or null. Honours PATHEXT on Windows. */
export async function findExecutable(name: string): Promise<string | null> {
  const exts = Deno.build.os === "windows"
    ? (Deno.env.get("PATHEXT") ?? ".EXE;.CMD;.BAT").split(";")
    : [""];
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      try {
        const info = await Deno.stat(candidate);
        if (info.isFile && (Deno.build.os === "windows" || (info.mode ?? 0) & 0o111)) {
          return candidate;
        }
      } catch {
        // not in this directory
      }
    }
  }
  return null;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (devpod, ssh…) and captures its output. */
export async function runCapture(program: string, args: string[]): Promise<RunResult> {
  const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `devpod …` attached to the terminal (it may prompt); returns the exit code. */
export async function devpodInteractive(devpod: string, args: string[]): Promise<number> {
  const child = new Deno.Command(devpod, {
    args,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

/** Names of the providers DevPod has (`provider list --output json` is a name → entry map). */
export async function installedProviders(devpod: string): Promise<string[]> {
  const res = await runCapture(devpod, ["provider", "list", "--output", "json"]);
  if (res.code !== 0) throw new Error(`devpod provider list failed: ${res.stderr.trim()}`);
  const parsed = JSON.parse(res.stdout || "{}");
  return Object.keys(parsed ?? {});
}

/** Ids of the workspaces whose provider is `provider` (`devpod list --output json`). */
export async function workspacesUsing(devpod: string, provider: string): Promise<string[]> {
  const res = await runCapture(devpod, ["list", "--output", "json"]);
  if (res.code !== 0) throw new Error(`devpod list failed: ${res.stderr.trim()}`);
  const list = JSON.parse(res.stdout || "[]") as { id?: string; provider?: { name?: string } }[];
  return (list ?? []).filter((w) => w.provider?.name === provider).map((w) => String(w.id));
}
