/**
 * `preview <machine> <port> [--host H] [--auth basic|none] [--no-https]`, `preview list`,
 * `preview rm <machine> <port>`: a machine's app at a URL, through Dokploy's Traefik.
 */
import { requireMachine } from "../lib/backup/locate.ts";
import { mine } from "../lib/identity/ownership.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { dokployFromContext } from "../lib/context/dokploy.ts";
import { ConfigError } from "../lib/errors.ts";
import { readProjectSnapshot } from "../lib/machine/project.ts";
import {
  addPreview,
  parseAuth,
  parsePort,
  type PreviewInfo,
  previewInfos,
  removePreview,
} from "../lib/preview/manage.ts";

interface Options {
  args?: (string | string[])[];
  host?: string;
  auth?: string;
  https?: boolean;
  json?: boolean;
}

const USAGE =
  "preview <machine> <port> [--host H] [--auth basic|none], preview list, or preview rm <machine> <port>";

export async function run(ctx: CommandContext, opts: Options): Promise<number> {
  const words = (opts.args ?? []).flat();
  if (words[0] === "list" && words.length === 1) return await list(ctx, opts.json ?? false);
  const remove = words[0] === "rm";
  const [machineId, portText, ...extra] = remove ? words.slice(1) : words;
  if (!machineId || portText === undefined || extra.length) {
    throw new ConfigError(`preview takes ${USAGE}`);
  }
  const port = parsePort(portText);
  const auth = parseAuth(opts.auth);
  const { config, api } = dokployFromContext(ctx);
  const snapshot = await readProjectSnapshot(api, config.projectName);
  const machine = requireMachine(snapshot, machineId, await api.identity(), "preview");
  const deps = { api, config, log: ctx.log, signal: ctx.signal };
  if (remove) {
    const gone = await removePreview(deps, machine, port);
    await ctx.stdout(
      `removed the preview of port ${port} of machine ${machineId}${
        gone.url ? ` (${gone.url} now answers 404)` : ""
      }\n`,
    );
    return 0;
  }
  const { preview, credentials } = await addPreview(deps, machine, port, {
    host: opts.host,
    auth,
    https: opts.https,
  });
  await ctx.stdout(
    `port ${port} of machine ${machineId} is at ${preview.url}\n` +
      (credentials
        ? `  user: ${credentials.user}\n  password: ${credentials.password}\n` +
          "  (shown once: Dokploy keeps only its hash; preview rm and add again for a new one)\n"
        : "  open to anyone who knows the URL (--auth none)\n") +
      "  the app must listen on 0.0.0.0 inside the devcontainer\n",
  );
  return 0;
}

async function list(ctx: CommandContext, json: boolean): Promise<number> {
  const { config, api } = dokployFromContext(ctx);
  const [snapshot, me] = await Promise.all([
    readProjectSnapshot(api, config.projectName),
    api.identity(),
  ]);
  const rows: PreviewInfo[] = (await Promise.all(
    mine(snapshot.machines, me).map(async ({ compose, marker }) => {
      const full = await api.composeOne(compose.composeId);
      return full ? previewInfos(marker.machineId, full) : [];
    }),
  )).flat().sort((a, b) => a.machineId.localeCompare(b.machineId) || a.port - b.port);
  if (json) {
    await ctx.stdout(JSON.stringify({ previews: rows }, null, 2) + "\n");
    return 0;
  }
  if (rows.length === 0) {
    await ctx.stdout("no previews\n");
    return 0;
  }
  const table = [
    ["MACHINE", "PORT", "URL", "AUTH", "PROBLEM"],
    ...rows.map((r) => [
      r.machineId,
      String(r.port),
      r.url ?? "-",
      r.auth === "basic" ? `basic (${r.user})` : "none",
      r.problem ?? "",
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  await ctx.stdout(
    table.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n") +
      "\n",
  );
  return 0;
}
