/**
 * What one test or bench run created on the engine, so that the run can remove it however
 * it ends: its test process killed by a signal or by TEST_TIMEOUT never runs its own
 * clean-up, and on a daemon we did not start the machines (restart policies) would run on.
 *
 * The run (scripts/engine_session.ts) makes a fresh directory and names it in
 * DEVPOD_TEST_LEDGER; its processes inherit it. Each compose project (an emulator's app:
 * a random-suffixed appName, no other run's) and each container started by name is one
 * file there. The sweep removes only those: another checkout's run on the same daemon
 * keeps everything of its own.
 */
import { join } from "node:path";
import { run } from "./run.ts";

export const LEDGER_ENV = "DEVPOD_TEST_LEDGER";
const PROJECT_LABEL = "com.docker.compose.project";

type Kind = "app" | "container" | "network";

/** Notes a compose project, a container or a network on the engine at `host`; no-op outside a run. */
export async function recordCreated(kind: Kind, name: string, host: string): Promise<void> {
  const dir = Deno.env.get(LEDGER_ENV);
  if (!dir) return;
  await Deno.writeTextFile(join(dir, `${kind}=${name}`), host).catch(() => {});
}

export interface Swept {
  containers: number;
  volumes: number;
  networks: number;
}

/**
 * Removes what the ledger names, on each engine it names: the projects' containers, volumes
 * (compose's, and the `<app>_…` ones Dokploy's restore makes without labels) and networks,
 * and the named containers and networks.
 */
export async function sweepLedger(dir: string, cli: string): Promise<Swept> {
  const byHost = new Map<string, Record<Kind, Set<string>>>();
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => [] as Deno.DirEntry[]);
  for (const e of entries) {
    const m = /^(app|container|network)=(.+)$/.exec(e.name);
    const host = m && await Deno.readTextFile(join(dir, e.name)).catch(() => "");
    if (!m || !host) continue;
    const entry = byHost.get(host) ??
      { app: new Set(), container: new Set(), network: new Set() };
    byHost.set(host, entry);
    entry[m[1] as Kind].add(m[2]);
  }
  const swept: Swept = { containers: 0, volumes: 0, networks: 0 };
  for (const [host, { app: apps, container: containers, network: networks }] of byHost) {
    const docker = (args: string[]) =>
      run(cli, args, {
        env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", DOCKER_HOST: host },
        clearEnv: true,
        timeoutMs: 120_000,
      });
    const LABEL = `{{.Label "${PROJECT_LABEL}"}}`;
    const rows = async (args: string[], format: string) =>
      (await docker([...args, "--format", format])).stdout.split("\n").filter(Boolean)
        .map((l) => l.split("\t"));
    const cs = (await rows(["ps", "-a"], `{{.ID}}\t{{.Names}}\t${LABEL}`))
      .filter(([, name, project]) => apps.has(project) || containers.has(name)).map(([id]) => id);
    if (cs.length) {
      await docker(["unpause", ...cs]); // a paused one is resumed first, as close() does
      if ((await docker(["rm", "-f", "-v", ...cs])).code === 0) swept.containers += cs.length;
    }
    const vs = (await rows(["volume", "ls"], `{{.Name}}\t${LABEL}`))
      .filter(([name, project]) =>
        apps.has(project) || [...apps].some((a) => name.startsWith(`${a}_`))
      )
      .map(([name]) => name);
    if (vs.length && (await docker(["volume", "rm", "-f", ...vs])).code === 0) {
      swept.volumes += vs.length;
    }
    const ns = (await rows(["network", "ls"], `{{.ID}}\t{{.Name}}\t${LABEL}`))
      .filter(([, name, project]) => apps.has(project) || networks.has(name)).map(([id]) => id);
    if (ns.length && (await docker(["network", "rm", ...ns])).code === 0) {
      swept.networks += ns.length;
    }
  }
  return swept;
}
