/**
 * The variables of the CLI that runs us, whichever line it is: DevPod (loft-sh v0.6.15 /
 * v0.7, skevetter/devpod v0.26) names them `DEVPOD_*`, Devsy (devsy-org/devsy v1.x)
 * renamed every one to `DEVSY_*` with no fallback (devpod-protocol.md, "Devsy"). Every
 * read of such a variable goes through here; the home (DEVPOD_HOME / DEVSY_HOME) is read
 * in lib/devpod_home.ts. Light on purpose: `command` loads it on every tunnel.
 */
import type { Env } from "./machine.ts";

/** The CLI lines, by the prefix of their variables. */
export type CliLine = "devpod" | "devsy";

/** Each line's variable prefix; the line's name is also its command (`devsy up`). */
const PREFIX: Record<CliLine, string> = { devpod: "DEVPOD", devsy: "DEVSY" };

/**
 * The line that runs us. Each sets its binary's path (`DEVPOD` / `DEVSY`) for every
 * provider command, after the user's own environment; DevPod is the default, as a
 * provider run by hand (doctor, list) usually has neither.
 */
export function cliLine(env: Env): CliLine {
  if (present(env.DEVSY) && !present(env.DEVPOD)) return "devsy";
  if (present(env.DEVPOD)) return "devpod";
  // Neither binary path: a Devsy-only variable still tells (a user's `DEVSY_DEBUG=true`).
  return Object.keys(env).some((k) => k.startsWith("DEVSY_") && present(env[k]))
    ? "devsy"
    : "devpod";
}

/**
 * The CLI's variable `name` (without prefix; "" is the binary path itself): the running
 * line's first, then the other line's, so a value set under either name is seen.
 */
export function cliVar(env: Env, name: string): string | undefined {
  const line = cliLine(env);
  const other: CliLine = line === "devsy" ? "devpod" : "devsy";
  for (const l of [line, other]) {
    const v = env[name === "" ? PREFIX[l] : `${PREFIX[l]}_${name}`];
    if (present(v)) return v;
  }
  return undefined;
}

/** `--debug` (either line sets `<PREFIX>_DEBUG=true`, and its log level is then debug). */
export function cliDebug(env: Env): boolean {
  return ["DEBUG", "PROVIDER_DEBUG"].some((n) => cliVar(env, n) === "true") ||
    cliVar(env, "LOG_LEVEL") === "debug";
}

/** Whether the user's CLI runs with telemetry off (`<PREFIX>_DISABLE_TELEMETRY=true`). */
export function cliTelemetryDisabled(env: Env): boolean {
  return cliVar(env, "DISABLE_TELEMETRY") === "true";
}

/** The CLI's own agent download override (`<PREFIX>_AGENT_URL`), or undefined. */
export function cliAgentUrl(env: Env): string | undefined {
  return cliVar(env, "AGENT_URL");
}

/** The CLI's binary (`DEVPOD` / `DEVSY`), its OS and arch as Go names them. */
export function cliBinary(env: Env): { path?: string; os?: string; arch?: string } {
  return { path: cliVar(env, ""), os: cliVar(env, "OS"), arch: cliVar(env, "ARCH") };
}

/**
 * A message's hints in the words of the running CLI: `devpod up`, `devpod provider …`
 * become `devsy up`, `devsy provider …` under Devsy (its verbs kept DevPod's names).
 * Our own name, `devpod-provider-dokploy`, is not a command of theirs and stays.
 */
export function inCliWords(message: string, line: CliLine): string {
  if (line === "devpod") return message;
  return message.replace(
    /\bdevpod (?=up\b|stop\b|delete\b|machine\b|provider\b|context\b)/g,
    "devsy ",
  );
}

function present(v: string | undefined): v is string {
  return v !== undefined && v.trim() !== "";
}
