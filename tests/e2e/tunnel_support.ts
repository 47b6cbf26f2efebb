/**
 * How the maintained lines (skevetter/devpod v0.26+, Devsy v1.x) drive a machine
 * provider, for the protocol tests: `status` polled after `create`/`start`, and
 * `command` as a stdio tunnel with the CLI's pipes on both ends.
 */
import assert from "node:assert/strict";
import { waitFor } from "../emulator/test_support.ts";
import { spawnVerb } from "./fault_support.ts";
import type { World } from "./harness.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One `status` as these lines run it: a word on stdout, nothing at all on stderr. */
export async function polledStatus(
  w: World,
  id: string,
  env: Record<string, string> = {},
): Promise<string> {
  const r = await w.run("status", id, { env });
  assert.equal(r.code, 0, `status failed: ${r.stderr}`);
  assert.equal(r.stderr, "", "status is silent on stderr when it succeeds");
  assert.match(r.stdoutText, /^(Running|Busy|Stopped|NotFound)\n$/);
  return r.stdoutText.trim();
}

/** Their wait after `create`/`start`: poll until Running; it must not see NotFound/Stopped. */
export async function waitsForRunning(w: World, id: string, after: string) {
  const seen = await waitFor(
    `Running after ${after}`,
    async () => {
      const s = await polledStatus(w, id);
      assert.ok(!["NotFound", "Stopped"].includes(s), `status said ${s} right after ${after}`);
      return s === "Running" && s;
    },
    60_000,
    0,
  );
  // Later polls (ssh, the next up) agree.
  assert.equal(await polledStatus(w, id), seen);
}

/** A `command` child as the CLI runs it: our pipes on its stdin and stdout. */
export async function tunnel(
  w: World,
  id: string,
  command: string,
  env: Record<string, string> = {},
) {
  const child = await spawnVerb(w, "command", id, {
    env: { ...env, COMMAND: command },
    stdin: "piped",
  });
  const reader = child.stdout.getReader();
  const writer = child.stdin.getWriter();
  let buffered = "";
  const stderr = new Response(child.stderr).text();
  return {
    child,
    /** The next stdout line (without its newline). */
    async line(): Promise<string> {
      while (!buffered.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stdout ended before a line; got ${JSON.stringify(buffered)}`);
        buffered += decoder.decode(value, { stream: true });
      }
      const nl = buffered.indexOf("\n");
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      return line;
    },
    send: (data: string | Uint8Array) =>
      writer.write(typeof data === "string" ? encoder.encode(data) : data),
    closeStdin: () => writer.close().catch(() => {}),
    /** The reader goes away: our end of the process's stdout is closed. */
    closeStdout: () => reader.cancel().catch(() => {}),
    /** Its exit; a call still running after `boundMs` is killed and fails the test. */
    async exit(boundMs = 60_000): Promise<{ code: number; stderr: string }> {
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        child.kill("SIGKILL");
      }, boundMs);
      const status = await child.status;
      clearTimeout(timer);
      await writer.close().catch(() => {});
      await reader.cancel().catch(() => {});
      assert.ok(!killed, `command still ran after ${boundMs} ms: it hangs`);
      return { code: status.code, stderr: await stderr };
    },
  };
}

export type Tunnel = Awaited<ReturnType<typeof tunnel>>;

/** The inject script's handshake (ping, pong); returns the line after it (`ARM-…` or `done`). */
export async function handshake(t: Tunnel): Promise<string> {
  assert.equal(await t.line(), "ping");
  await t.send("pong\n");
  return await t.line();
}

/** No stack trace or "unexpected error" reached the CLI's log. */
export function assertNoTrace(stderr: string) {
  assert.doesNotMatch(stderr, /at .*\.ts:\d+|unexpected error|Stack backtrace/, stderr);
}
