/**
 * `doctor`: checks everything a working setup needs, one line each, with the fix
 * for what fails — options, server, API key, version, project, the target server, the
 * shared image cache of each server, every remote server (active, reachable by Dokploy,
 * our machines' SSH ports reachable from here), and local OpenSSH.
 */
import { loadConfig } from "../lib/config.ts";
import type { CommandContext } from "../lib/context/command.ts";
import { DokployApi } from "../lib/dokploy/api.ts";
import { DokployClient } from "../lib/dokploy/client.ts";
import { detectVersion } from "../lib/dokploy/version.ts";
import { machinesIn } from "../lib/machine/inventory.ts";
import { identityDir, identityStore, isPrivileged } from "../lib/identity/identity.ts";
import { resolveProjectName } from "../lib/identity/project_name.ts";
import { mine } from "../lib/identity/ownership.ts";
import { readProjectSnapshot } from "../lib/machine/project.ts";
import { checkBackups } from "../lib/backup/doctor.ts";
import { checkImageCaches } from "../lib/cache/doctor.ts";
import { checkPreviews } from "../lib/preview/doctor.ts";
import { childEnv } from "../lib/process.ts";
import { checkServers, checkTarget } from "../lib/servers/doctor.ts";

import type { Check } from "../lib/servers/doctor.ts";

export async function run(ctx: CommandContext, opts: { fix?: boolean } = {}): Promise<number> {
  const checks: Check[] = [];
  const report = async (c: Check) => {
    checks.push(c);
    await ctx.stdout(`${c.ok ? "✔" : "✘"} ${c.name.padEnd(22)} ${c.detail}\n`);
  };
  const attempt = async (name: string, fn: () => Promise<string>) => {
    try {
      await report({ ok: true, name, detail: await fn() });
      return true;
    } catch (err) {
      await report({ ok: false, name, detail: (err as Error).message });
      return false;
    }
  };

  let config;
  try {
    config = loadConfig(ctx.env);
    await report({ ok: true, name: "options", detail: "all options valid" });
  } catch (err) {
    await report({ ok: false, name: "options", detail: (err as Error).message });
    return 1;
  }
  const api = new DokployApi(
    new DokployClient({
      baseUrl: config.serverUrl,
      token: config.token,
      attempts: 1,
      timeoutMs: 10_000,
    }),
    identityStore(identityDir(ctx.env), config.serverUrl, config.token),
  );
  const reachable = await attempt("server reachable", async () => {
    const res = await fetch(`${config.serverUrl}/api/health`, {
      signal: AbortSignal.timeout(10_000),
    }).catch((err) => {
      throw new Error(
        `${config.serverUrl} does not answer (${err.message}); check DOKPLOY_SERVER_URL`,
      );
    });
    await res.body?.cancel();
    return `${config.serverUrl} answers (HTTP ${res.status})`;
  });
  if (
    reachable &&
    await attempt(
      "API key + version",
      async () => `Dokploy ${await detectVersion(api)}, key accepted`,
    )
  ) {
    await attempt("who", async () => {
      const me = await api.identity({ fresh: true });
      return `${me.email} (${me.role}${
        isPrivileged(me) ? ": sees every machine" : ": sees what it made or was given"
      })`;
    });
    await attempt("project", async () => {
      const name = await resolveProjectName(api, config.projectName);
      const found = (await api.projects()).filter((p) => p.name === name);
      return found.length
        ? `"${name}" exists${
          found.length > 1 ? ` (${found.length} with that name; the oldest is used)` : ""
        }`
        : `"${name}" will be created with the first machine`;
    });
    const servers = await api.servers().catch(() => null);
    if (!servers) {
      await report({ ok: false, name: "servers", detail: "server.all failed; run doctor again" });
    } else {
      await checkTarget(config, servers, report);
    }
    const snapshot = await readProjectSnapshot(api, config.projectName).catch(() => null);
    // --fix: a cache whose deploy failed is deployed again now (and waited for).
    const fix = opts.fix ? { log: ctx.log, signal: ctx.signal } : undefined;
    if (snapshot) await checkImageCaches(config, api, snapshot, report, fix);
    // Your machines: a teammate's failed backup or stopped preview is theirs to fix.
    const me = await api.identity().catch(() => null);
    const yours = snapshot && me ? { ...snapshot, machines: mine(snapshot.machines, me) } : null;
    const machines = yours && await machinesIn(api, yours).catch(() => null);
    if (!machines) {
      await report({ ok: false, name: "machines", detail: "the project could not be read" });
    } else {
      if (servers) await checkServers(config, api, servers, machines, report);
      await checkBackups(config, api, machines, report);
      await checkPreviews(api, machines, report, { env: ctx.env });
    }
  }
  await attempt("local OpenSSH", async () => {
    const out = await new Deno.Command("ssh", {
      args: ["-V"],
      stderr: "piped",
      stdout: "null",
      clearEnv: true,
      env: childEnv(),
    })
      .output().catch(() => {
        throw new Error(
          "ssh is not installed; install OpenSSH (apt install openssh-client / brew install openssh)",
        );
      });
    return new TextDecoder().decode(out.stderr).trim();
  });
  const failed = checks.filter((c) => !c.ok).length;
  await ctx.stdout(failed ? `${failed} check(s) failed\n` : "all checks passed\n");
  return failed ? 1 : 0;
}
