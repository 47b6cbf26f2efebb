/**
 * The files Dokploy writes before it runs `docker compose` (dokploy-api.md §8):
 * `<base>/compose/<appName>/code/docker-compose.yml`, byte for byte as given, and a
 * `.env` of APP_NAME, COMPOSE_PROJECT_NAME, the compose `env` and DOCKER_CONFIG.
 */
import { parseDotenv } from "./compose_spec.ts";
import type { Ctx } from "./context.ts";
import { serverAddress } from "./servers.ts";
import { codeDir, type ComposeApp } from "./machine/runtime.ts";
import type { ComposeRow } from "./store.ts";

export function composeApp(
  ctx: Ctx,
  compose: Pick<ComposeRow, "appName"> & Partial<Pick<ComposeRow, "serverId">>,
): ComposeApp {
  return {
    appName: compose.appName,
    dir: `${ctx.dataDir}/compose/${compose.appName}`,
    serverId: compose.serverId ?? null,
    address: serverAddress(ctx.store, compose.serverId),
  };
}

/** Whether a deploy has written the files (start and stop run inside that directory). */
export function filesWritten(app: ComposeApp): boolean {
  try {
    return Deno.statSync(codeDir(app)).isDirectory;
  } catch {
    return false;
  }
}

/** `KEY="value"` with `\`, `"` and `$` escaped, as Dokploy writes each line. */
function dotenvLine(key: string, value: string): string {
  return `${key}="${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

export function renderDotenv(appName: string, envText: string | null): string {
  const lines = [
    dotenvLine("APP_NAME", appName),
    dotenvLine("COMPOSE_PROJECT_NAME", appName),
    ...Object.entries(parseDotenv(envText)).map(([k, v]) => dotenvLine(k, v)),
    dotenvLine("DOCKER_CONFIG", "/root/.docker"),
  ];
  return `${lines.join("\n")}\n`;
}

/** `text`: the file as the deploy writes it (re-serialised with its domains, see domains.ts). */
export async function writeComposeFiles(
  app: ComposeApp,
  compose: ComposeRow,
  text = compose.composeFile,
): Promise<void> {
  const dir = codeDir(app);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/docker-compose.yml`, text);
  await Deno.writeTextFile(`${dir}/.env`, renderDotenv(app.appName, compose.env), { mode: 0o600 });
}

/** Dokploy's delete ends with `rm -rf <base>/compose/<appName>`. */
export async function removeComposeFiles(app: ComposeApp): Promise<void> {
  await Deno.remove(app.dir, { recursive: true }).catch(() => {});
}
