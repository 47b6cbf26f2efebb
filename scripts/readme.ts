/**
 * The README's option table, rendered from `lib/options.ts` between the
 * `<!-- options:start -->` and `<!-- options:end -->` markers.
 *
 *   deno task readme            rewrite README.md
 *   deno task readme --check    exit 1 when the table differs from the model
 */
import { parseArgs } from "node:util";
import { OPTIONS, type OptionSpec } from "../lib/options.ts";
import { README } from "./dev/paths.ts";

export const START_MARKER = "<!-- options:start -->";
export const END_MARKER = "<!-- options:end -->";

const cell = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");

function flags(o: OptionSpec): string {
  return [o.required && "required", o.password && "secret", o.global && "global"]
    .filter(Boolean).join(", ");
}

function defaultCell(o: OptionSpec): string {
  if (o.default === undefined) return "";
  return o.default === "" ? "(empty)" : `\`${o.default}\``;
}

function descriptionCell(o: OptionSpec): string {
  const values = o.enum ? ` One of ${o.enum.map((e) => `\`${e.value}\``).join(", ")}.` : "";
  return o.description + values;
}

/**
 * A Markdown table of the options, padded the way `deno fmt` pads tables, so the
 * README stays stable under `deno fmt --check`.
 */
export function renderOptionsTable(options: readonly OptionSpec[] = OPTIONS): string {
  const header = ["Option", "Default", "Description", "Flags"];
  const rows = options.map((o) =>
    [`\`${o.name}\``, defaultCell(o), descriptionCell(o), flags(o)].map(cell)
  );
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Why the released default of MACHINE_IMAGE differs from the table's. */
export const IMAGE_NOTE =
  "Releases set `MACHINE_IMAGE`'s default to the prebuilt machine image, pinned by digest\n" +
  "(`ghcr.io/<owner>/devpod-dokploy-machine@sha256:…`); the table shows the fallback.";

/** The README with the region between the markers replaced by `table`. */
export function replaceOptionsRegion(readme: string, table: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < start) {
    throw new Error(`README.md needs ${START_MARKER} and ${END_MARKER} (in that order)`);
  }
  return readme.slice(0, start + START_MARKER.length) + "\n\n" + table + "\n\n" +
    IMAGE_NOTE + "\n\n" + readme.slice(end);
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { check: { type: "boolean", default: false } } });
  const current = await Deno.readTextFile(README);
  const fresh = replaceOptionsRegion(current, renderOptionsTable());
  if (values.check) {
    if (fresh !== current) {
      console.error("README.md's option table differs from lib/options.ts: run `deno task readme`");
      Deno.exit(1);
    }
    console.log("README.md option table is up to date");
  } else {
    await Deno.writeTextFile(README, fresh);
    console.log(fresh === current ? "README.md unchanged" : "README.md option table updated");
  }
}
