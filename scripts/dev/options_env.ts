/**
 * Provider options kept in a local `.env` file: reading it, keeping the names the model
 * knows, merging with the model's defaults, and masking secrets for display.
 */
import { parseEnv } from "node:util";
import { OPTION_GROUPS, OPTIONS, type OptionSpec } from "../../lib/options.ts";

/** Reads a dotenv file; null when it does not exist. */
export async function readEnvFile(path: string): Promise<Record<string, string> | null> {
  try {
    return { ...parseEnv(await Deno.readTextFile(path)) } as Record<string, string>;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Splits dotenv entries into options of the model (in model order) and unknown keys. */
export function pickKnownOptions(
  env: Record<string, string>,
): { known: [string, string][]; unknown: string[] } {
  const names = new Set(OPTIONS.map((o) => o.name));
  return {
    known: OPTIONS.filter((o) => o.name in env).map((o) => [o.name, env[o.name]]),
    unknown: Object.keys(env).filter((k) => !names.has(k)),
  };
}

/** What DevPod would reject for this value (enum, validationPattern, type); null if fine. */
export function optionValueProblem(spec: OptionSpec, value: string): string | null {
  if (value === "") return null;
  if (spec.enum && !spec.enum.some((e) => e.value === value)) {
    return `${spec.name}=${value} is not one of ${spec.enum.map((e) => e.value).join(", ")}`;
  }
  if (spec.validationPattern && !new RegExp(spec.validationPattern).test(value)) {
    return `${spec.name}: ${spec.validationMessage ?? `must match ${spec.validationPattern}`}`;
  }
  if (spec.type === "boolean" && !/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(value)) {
    return `${spec.name}=${value} must be true or false`;
  }
  return null;
}

/** `****` plus at most the last 4 characters, and only when the secret is long enough. */
export function maskSecret(value: string): string {
  if (value === "") return "";
  return value.length >= 16 ? `****${value.slice(-4)}` : "****";
}

/** The value to show for an option: masked when the model marks it as a password. */
export function displayValue(spec: OptionSpec, value: string): string {
  return spec.password ? maskSecret(value) : value;
}

export interface EffectiveOption {
  spec: OptionSpec;
  value: string;
  source: ".env" | "default" | "unset";
}

/** Every option of the model with the value DevPod would get from this `.env`. */
export function effectiveOptions(env: Record<string, string>): EffectiveOption[] {
  return OPTIONS.map((spec) => {
    if (spec.name in env && env[spec.name] !== "") {
      return { spec, value: env[spec.name], source: ".env" };
    }
    if (spec.default !== undefined) return { spec, value: spec.default, source: "default" };
    return { spec, value: "", source: "unset" };
  });
}

/** Plain-text table with padded columns. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The effective options as a table, secrets masked. */
export function formatOptionsTable(options: EffectiveOption[]): string {
  return formatTable(
    ["OPTION", "VALUE", "SOURCE"],
    options.map((o) => [o.spec.name, displayValue(o.spec, o.value), o.source]),
  );
}

/** A commented dotenv template of every option, grouped like the DevPod UI. */
export function renderEnvExample(): string {
  const lines = [
    "# devpod-provider-dokploy options, read by `deno task configure` (and show-config).",
    "# Generated from lib/options.ts by `deno task setup-env`.",
    "# Required options are uncommented; remove the leading `# ` of any other to set it.",
    "# Keep real tokens in .env only (it is gitignored), never in this file.",
  ];
  for (const group of OPTION_GROUPS) {
    lines.push("", `## ${group.name}`);
    for (const spec of OPTIONS.filter((o) => o.group === group.name)) {
      lines.push("", ...describe(spec));
      lines.push(spec.required ? `${spec.name}=` : `# ${spec.name}=${quote(spec.default ?? "")}`);
    }
  }
  return lines.join("\n") + "\n";
}

function describe(spec: OptionSpec): string[] {
  const flags = [
    spec.required && "required",
    spec.password && "secret",
    spec.global && "global",
    spec.type && spec.type !== "string" && spec.type,
  ].filter(Boolean);
  const out = [`# ${spec.description}`];
  if (spec.enum) out.push(`# One of: ${spec.enum.map((e) => e.value).join(", ")}.`);
  if (flags.length) out.push(`# (${flags.join(", ")})`);
  if (!spec.required) out.push(`# Default: ${spec.default === "" ? "(empty)" : spec.default}`);
  return out;
}

/** dotenv quoting for values that would otherwise be cut at `#` or whitespace. */
function quote(value: string): string {
  return /^[\w.:/@${}-]*$/.test(value) ? value : `"${value}"`;
}
