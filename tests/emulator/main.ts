/**
 * Runs the Dokploy emulator until SIGINT/SIGTERM.
 *
 *   deno run -A tests/emulator/main.ts [--port N] [--token T] [--version V]
 *     [--deploy-delay-ms N] [--data-dir D] [--latency-ms N] [--engine] [--verbose]
 *
 * --engine runs machines on the real Docker engine (tests/engine/), started if needed.
 *
 * Prints one JSON line {"url","token","dataDir"} on stdout once it listens.
 */
import { ensureEngine } from "../engine/engine.ts";
import { type DokployVersion, startEmulator } from "./mod.ts";

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf("=");
    if (eq > 0) out[arg.slice(2, eq)] = arg.slice(eq + 1);
    else if (arg === "--verbose" || arg === "--engine") out[arg.slice(2)] = "true";
    else out[arg.slice(2)] = argv[++i] ?? "";
  }
  return out;
}

function num(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer`);
  return n;
}

const KNOWN = [
  "port",
  "token",
  "version",
  "deploy-delay-ms",
  "data-dir",
  "latency-ms",
  "engine",
  "verbose",
];

if (import.meta.main) {
  const args = parseArgs(Deno.args);
  const unknown = Object.keys(args).filter((k) => !KNOWN.includes(k));
  if (unknown.length) {
    console.error(`unknown option(s): ${unknown.map((k) => `--${k}`).join(" ")}`);
    Deno.exit(2);
  }
  const emu = await startEmulator({
    port: num(args.port, "port"),
    token: args.token,
    version: args.version as DokployVersion | undefined,
    deployDelayMs: num(args["deploy-delay-ms"], "deploy-delay-ms"),
    latencyMs: num(args["latency-ms"], "latency-ms"),
    dataDir: args["data-dir"],
    engine: args.engine ? await ensureEngine((l) => console.error(l)) : undefined,
    log: args.verbose ? (line) => console.error(line) : undefined,
  });
  console.log(JSON.stringify({ url: emu.url, token: emu.token, dataDir: emu.dataDir }));

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await emu.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
