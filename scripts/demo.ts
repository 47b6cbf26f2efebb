/**
 * `deno task demo`: the whole DevPod lifecycle against the built-in Dokploy emulator
 * and a real local sshd, through the real entry point (`deno run mod.ts <verb>`) with
 * DevPod's environment. Readable progress, then a summary of what was measured.
 */
import { join } from "node:path";
import { startEmulator } from "../tests/emulator/mod.ts";
import { cacheEnv, runProvider } from "../tests/e2e/harness.ts";
import { styleFor } from "./terminal_style.ts";

// Everything below goes to stdout (console.log).
const { bold, dim } = styleFor(Deno.stdout);
const rows: [string, string, string][] = [];

async function main(): Promise<number> {
  console.log(
    bold("devpod-provider-dokploy demo") + dim(" — emulated Dokploy v0.30.2 + real sshd"),
  );
  const emu = await startEmulator({ deployDelayMs: 300 });
  const root = await Deno.makeTempDir({ prefix: "devpod-demo-" });
  const machineId = "demo-ws-1f2e3";
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? root,
    ...cacheEnv(root),
    // DevPod's own layout: `cleanup` finds this home's machines as DevPod keeps them.
    DEVPOD_HOME: join(root, "devpod"),
    MACHINE_ID: machineId,
    MACHINE_FOLDER: join(root, "devpod", "contexts", "default", "machines", machineId),
    DOKPLOY_SERVER_URL: emu.url,
    DOKPLOY_API_TOKEN: emu.token,
    SSH_PORT_RANGE: "32200-32999",
    INACTIVITY_TIMEOUT: "6s",
    READY_TIMEOUT: "2m",
  };
  await Deno.mkdir(env.MACHINE_FOLDER, { recursive: true });
  let failed = false;

  async function step(
    title: string,
    verb: string,
    extra: Record<string, string> = {},
    expect?: (out: string) => boolean,
  ) {
    const started = performance.now();
    const r = await runProvider(verb.split(" "), { ...env, ...extra }, { timeoutMs: 180_000 });
    const ms = performance.now() - started;
    const out = r.stdoutText.trim();
    const ok = r.code === 0 && (expect ? expect(out) : true);
    failed ||= !ok;
    const shown = out ? ` → ${out.split("\n").slice(-3).join(" ⏎ ")}` : "";
    console.log(
      `${ok ? "✔" : "✘"} ${title.padEnd(44)} ${dim(`${(ms / 1000).toFixed(2)}s`)}${shown}`,
    );
    if (!ok) console.log(dim(r.stderr.trim().split("\n").map((l) => `    ${l}`).join("\n")));
    rows.push([title, ok ? "ok" : "FAILED", `${(ms / 1000).toFixed(2)}s`]);
    return out;
  }

  try {
    console.log(dim(`emulator at ${emu.url}; machine folder ${env.MACHINE_FOLDER}`));
    await step("init: check URL, token, Dokploy version", "init");
    await step("create: deploy + wait for pinned-key SSH", "create");
    await step("status", "status", {}, (o) => o === "Running");
    await step("command: whoami on the machine", "command", {
      COMMAND: 'echo "$(id -un)@$(hostname)"',
    }, (o) => o.startsWith("devpod@"));
    await step("command: write a file in the home volume", "command", {
      COMMAND: "echo 'hello from before the stop' > ~/note.txt && cat ~/note.txt",
    });
    await step("stop", "stop");
    await step("status", "status", {}, (o) => o === "Stopped");
    await step("start", "start");
    await step(
      "command: file survived stop/start",
      "command",
      { COMMAND: "cat ~/note.txt" },
      (o) => o === "hello from before the stop",
    );
    console.log(
      dim(
        "   waiting for the idle watchdog: the shared SSH connection closes 15 s after the last tunnel, then INACTIVITY_TIMEOUT=6s…",
      ),
    );
    const idleStarted = performance.now();
    let idle = "";
    while (performance.now() - idleStarted < 60_000) {
      await new Promise((r) => setTimeout(r, 1000));
      const r = await runProvider(["status"], env);
      idle = r.stdoutText.trim();
      if (idle === "Stopped") break;
    }
    const idleOk = idle === "Stopped";
    failed ||= !idleOk;
    console.log(
      `${idleOk ? "✔" : "✘"} ${"idle auto-stop: machine stopped itself".padEnd(44)} ${
        dim(`${((performance.now() - idleStarted) / 1000).toFixed(2)}s`)
      } → ${idle}`,
    );
    rows.push([
      "idle auto-stop",
      idleOk ? "ok" : "FAILED",
      `${((performance.now() - idleStarted) / 1000).toFixed(2)}s`,
    ]);
    await step("start after idle stop", "start");
    await step(
      "command: data still there",
      "command",
      { COMMAND: "cat ~/note.txt" },
      (o) => o === "hello from before the stop",
    );
    await step("delete", "delete");
    await step("status", "status", {}, (o) => o === "NotFound");
    // The server's shared image cache outlives its machines; cleanup removes it once unused.
    await step(
      "cleanup --yes: the unused image cache goes",
      "cleanup --yes",
      {},
      // The fact, not the wording: a line says this cache was deleted (what went with it and
      // how its server is named may be added); the check below finds no service left.
      (o) => /^deleted image cache devpod-image-cache-\S+(\s.*)?$/m.test(o),
    );
    const snap = await (await emu.snapshot());
    const leftovers = snap.composes.length + snap.volumeDirs.length + snap.machineProcesses;
    failed ||= leftovers !== 0;
    console.log(
      `${
        leftovers === 0 ? "✔" : "✘"
      } nothing left on the emulated Dokploy (services, volumes, processes: ${leftovers})`,
    );
  } finally {
    await emu.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  console.log("\n" + bold("summary"));
  for (const [t, s, ms] of rows) console.log(`  ${t.padEnd(46)} ${s.padEnd(7)} ${ms}`);
  console.log(failed ? bold("demo FAILED") : bold("demo completed: the whole lifecycle works"));
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
