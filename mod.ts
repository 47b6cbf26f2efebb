#!/usr/bin/env -S deno run --allow-all
/**
 * devpod-provider-dokploy — CLI entry. Parses argv, dispatches to commands/, and maps
 * every error to one line on stderr and an exit code. Nothing here prints a stack
 * trace unless the CLI runs with --debug (DEVPOD_DEBUG=true, or Devsy's DEVSY_DEBUG=true).
 */
import { type CliLine, cliLine, inCliWords } from "./lib/context/cli_env.ts";
import { type CommandContext, defaultContext } from "./lib/context/command.ts";
import { ConfigError, ProviderError } from "./lib/errors.ts";
import { redact } from "./lib/log.ts";
import { PROVIDER_VERSION } from "./lib/version.ts";

type Runner = (ctx: CommandContext, opts: Record<string, unknown>) => Promise<number>;

/** Lazy imports keep start-up small: `status` loads only what it uses. */
const VERBS: {
  name: string;
  summary: string;
  load: () => Promise<{ run: Runner }>;
  options?: [string, string][];
  /** Positional arguments in commander's syntax (`<machine>`), handed on as `opts.args`. */
  args?: string[];
}[] = [
  {
    name: "init",
    summary: "validate options and the Dokploy connection (run by DevPod)",
    load: () => import("./commands/init.ts"),
  },
  {
    name: "create",
    summary: "create the machine and wait until SSH works (run by DevPod)",
    load: () => import("./commands/create.ts"),
  },
  {
    name: "start",
    summary: "start a stopped machine and wait until SSH works (run by DevPod)",
    load: () => import("./commands/start.ts"),
  },
  {
    name: "stop",
    summary: "stop the machine; volumes are kept (run by DevPod)",
    load: () => import("./commands/stop.ts"),
  },
  {
    name: "delete",
    summary: "delete the machine and its volumes (run by DevPod)",
    load: () => import("./commands/delete.ts"),
  },
  {
    name: "status",
    summary: "print Running, Busy, Stopped or NotFound (run by DevPod)",
    load: () => import("./commands/status.ts"),
  },
  {
    name: "command",
    summary: "run $COMMAND on the machine over SSH as a stdio tunnel (run by DevPod)",
    load: () => import("./commands/command.ts"),
  },
  {
    name: "describe",
    summary: "describe the machine: service, server, address, size, state (run by DevPod's fork)",
    load: () => import("./commands/describe.ts"),
  },
  {
    name: "doctor",
    summary: "check options, server, API key, version, SSH",
    load: () => import("./commands/doctor.ts"),
    options: [["--fix", "deploy a shared image cache whose deploy failed again, now"]],
  },
  {
    name: "list",
    summary: "list your machines on the Dokploy server (--all: every owner's)",
    load: () => import("./commands/list.ts"),
    options: [
      ["--json", "print JSON"],
      ["--all", "every machine this API key may see, with its owner"],
      ["--backups", "list the backups in BACKUP_DESTINATION, of deleted machines too"],
    ],
  },
  {
    name: "cleanup",
    summary: "find (and with --yes delete) your machines whose DevPod folder is gone",
    load: () => import("./commands/cleanup.ts"),
    args: ["[machine...]"],
    options: [
      ["-y, --yes", "delete the orphans and the machines named (default: dry run)"],
      ["--all-owners", "owners/admins: every owner's machines; --yes deletes only those named"],
    ],
  },
  {
    name: "backup",
    summary: "back a machine's home up now through Dokploy and wait for it (BACKUP_DESTINATION)",
    load: () => import("./commands/backup.ts"),
    args: ["<machine>"],
  },
  {
    name: "restore",
    summary:
      "put a backup of <machine> back into its home volume, or with --into into another machine's",
    load: () => import("./commands/restore.ts"),
    args: ["<machine>"],
    options: [
      ["--from <key>", "the backup's object key (see list --backups)"],
      ["--latest", "the newest complete backup of <machine>"],
      ["--into <machine>", "the machine whose home is replaced (default: <machine> itself)"],
      ["--force", "replace the home even when it cannot be backed up first"],
    ],
  },
  {
    name: "preview",
    summary:
      "preview <machine> <port>: the machine's app at a URL through Dokploy's Traefik; preview list; preview rm <machine> <port>",
    load: () => import("./commands/preview.ts"),
    args: ["[words...]"],
    options: [
      [
        "--host <host>",
        "the URL's host name (default: under PREVIEW_DOMAIN, or one Dokploy generates)",
      ],
      ["--auth <mode>", "basic (default: a generated user and password, shown once) or none"],
      ["--no-https", "plain HTTP, no Let's Encrypt certificate"],
      ["--json", "preview list: print JSON"],
    ],
  },
  {
    name: "version",
    summary: "print the provider version",
    load: () => import("./commands/version.ts"),
  },
];

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = () => {
    // First signal: roll back and stop cleanly. Second: give up at once.
    if (++signals > 1) Deno.exit(130);
    controller.abort();
  };
  const installed: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of installed) Deno.addSignalListener(s, onSignal);

  const ctx = defaultContext(controller.signal);
  try {
    // DevPod calls `<binary> <verb>` many times per workspace: skip the argument
    // parser for that exact shape, it is start-up time on every tunnel.
    const direct = argv.length === 1 ? VERBS.find((v) => v.name === argv[0] && !v.args) : undefined;
    if (direct) return await (await direct.load()).run(ctx, {});
    return await parseAndRun(argv, ctx);
  } catch (err) {
    return reportError(err, ctx.log.debugEnabled, cliLine(ctx.env));
  } finally {
    for (const s of installed) Deno.removeSignalListener(s, onSignal);
  }
}

/** Human use: help, flags, suggestions for typos. */
async function parseAndRun(argv: string[], ctx: CommandContext): Promise<number> {
  const { Command, CommanderError } = await import("commander");
  let exitCode = 0;
  const program = new Command()
    .name("devpod-provider-dokploy")
    .description("DevPod machine provider for Dokploy")
    .version(PROVIDER_VERSION, "-V, --version-flag")
    .option("--env-file <path>", "read options from a .env file (the environment wins)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) })
    .showSuggestionAfterError(true);
  for (const verb of VERBS) {
    const cmd = program.command(verb.name).description(verb.summary);
    for (const [flags, description] of verb.options ?? []) cmd.option(flags, description);
    for (const arg of verb.args ?? []) cmd.argument(arg);
    // commander calls back with the positional arguments, then the options, then itself.
    cmd.action(async (...given: unknown[]) => {
      const args = given.slice(0, (verb.args ?? []).length) as string[];
      const opts = given[(verb.args ?? []).length] as Record<string, unknown>;
      const envFile = program.opts().envFile;
      const withFile = envFile ? { ...ctx, env: await mergeEnvFile(envFile, ctx.env) } : ctx;
      exitCode = await (await verb.load()).run(withFile, { ...opts, args });
    });
  }
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    // commander already printed its one-line message (unknown command, bad flag).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return exitCode;
}

/** Options from a .env file (seed users keep theirs there); set variables win. */
async function mergeEnvFile(
  path: string,
  env: CommandContext["env"],
): Promise<CommandContext["env"]> {
  const { parseEnv } = await import("node:util");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(`--env-file ${path} cannot be read (${(err as Error).message})`);
  }
  const fromFile = parseEnv(text) as Record<string, string>;
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") merged[k] = v;
  return merged;
}

function reportError(err: unknown, debug: boolean, line: CliLine): number {
  const write = (s: string) =>
    Deno.stderr.writeSync(new TextEncoder().encode(redact(inCliWords(s, line))));
  if (err instanceof ProviderError) {
    write(`devpod-provider-dokploy: ${err.message}\n`);
    if (debug && err.stack) write(`${err.stack}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  write(
    `devpod-provider-dokploy: unexpected error: ${
      message.split("\n")[0]
    } (run ${line} with --debug, or set ${line.toUpperCase()}_DEBUG=true, for details)\n`,
  );
  if (debug && err instanceof Error && err.stack) write(`${err.stack}\n`);
  return 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
