import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertNoHostKeyRefusal,
  clearingRefusal,
  noteSshOutcome,
  REFUSAL_FILE,
} from "../../lib/ssh/host_key_refusal.ts";
import { type MachineState, writeState } from "../../lib/machine/state.ts";
import { relayStderr } from "../../lib/ssh/stderr_relay.ts";

/** What OpenSSH 9.2 prints when the pinned key does not match (LogLevel=ERROR). */
const OPENSSH_REFUSAL = [
  "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
  "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
  "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
  "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
  "The fingerprint for the ED25519 key sent by the remote host is",
  "SHA256:ogaJvu5uatG7PcJLzBXxXBGKlNF177MY49MTqBUI++s.",
  "Please contact your system administrator.",
  "Add correct host key in /m/known_hosts to get rid of this message.",
  "Offending ED25519 key in /m/known_hosts:1",
  "  remove with:",
  '  ssh-keygen -f "/m/known_hosts" -R "[127.0.0.1]:32201"',
  "Host key for [127.0.0.1]:32201 has changed and you have requested strict checking.",
  "Host key verification failed.",
  "",
].join("\n");

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
}

/** Relays `chunks`; returns what was written and the tail. */
async function relay(chunks: Uint8Array[], keepChars?: number) {
  const written: Uint8Array[] = [];
  const tail = await relayStderr(streamOf(chunks), (b) => written.push(b.slice()), keepChars);
  const out = new Uint8Array(written.reduce((n, b) => n + b.length, 0));
  written.reduce((off, b) => (out.set(b, off), off + b.length), 0);
  return { out, tail };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("ssh's stderr is relayed without OpenSSH's advice to remove the pinned key", async () => {
  // Split mid-line, as a pipe delivers it.
  const all = bytes(OPENSSH_REFUSAL);
  const { out, tail } = await relay([
    all.subarray(0, 100),
    all.subarray(100, 101),
    all.subarray(101),
  ]);
  assert.doesNotMatch(text(out), /ssh-keygen|remove with|Add correct host key/);
  assert.match(text(out), /REMOTE HOST IDENTIFICATION HAS CHANGED/);
  assert.match(text(out), /Host key verification failed\.\n$/);
  assert.match(tail, /Host key verification failed/, "the caller still sees the refusal");
});

Deno.test("other stderr passes byte for byte, a last line without newline too", async () => {
  const binary = new Uint8Array([0xff, 0x00, 0x0a, 0xc3, 0x28, 0x0a, 0x41]);
  const { out } = await relay([bytes("agent: starting\n"), binary, bytes("B")]);
  assert.deepEqual(out, new Uint8Array([...bytes("agent: starting\n"), ...binary, 0x42]));
  const long = "x".repeat(200_000); // no newline for a long time: not held for ever
  assert.equal(text((await relay([bytes(long)])).out), long);
  assert.equal((await relay([bytes(long)], 10)).tail, "x".repeat(10));
});

Deno.test("the relay stops when told, with what arrived so far (a master may hold the pipe)", async () => {
  let source!: ReadableStreamDefaultController<Uint8Array>;
  const open = new ReadableStream<Uint8Array>({ start: (c) => void (source = c) });
  const written: string[] = [];
  const stop = new AbortController();
  const relayed = relayStderr(open, (b) => written.push(text(b)), 4096, stop.signal);
  source.enqueue(bytes("before the end\npartial"));
  await new Promise((r) => setTimeout(r, 0));
  stop.abort(); // the stream itself never ends
  assert.equal(await relayed, "before the end\npartial");
  assert.deepEqual(written, ["before the end\n", "partial"]);
});

async function withMachine(fn: (folder: string, state: MachineState) => Promise<void>) {
  const folder = await Deno.makeTempDir({ prefix: "devpod-refusal-" });
  const state: MachineState = {
    version: 1,
    machineId: "m1",
    composeId: "c1",
    appName: "devpod-m1-abc",
    projectId: "p",
    environmentId: "e",
    serverId: null,
    sshHost: "127.0.0.1",
    // Nothing listens on port 1: a probe there finds the port closed.
    sshPort: 1,
    sshUser: "devpod",
    hostPublicKey: "ssh-ed25519 AAAA",
    hostKeyFingerprint: "SHA256:pinned",
    createdAt: new Date().toISOString(),
  };
  try {
    await writeState(folder, state);
    await fn(folder, state);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
}

const recorded = (folder: string) =>
  Deno.stat(join(folder, REFUSAL_FILE)).then(() => true, () => false);

Deno.test("command's outcome records a refusal and clears it once ssh gets through", async () => {
  await withMachine(async (folder, state) => {
    const message = await noteSshOutcome(folder, state, 255, OPENSSH_REFUSAL);
    assert.match(message ?? "", /127\.0\.0\.1:1 presents a host key that is not this machine's/);
    assert.doesNotMatch(message ?? "", /ssh-keygen|-R /);
    assert.ok(await recorded(folder));
    assert.equal((await Deno.stat(join(folder, REFUSAL_FILE))).mode! & 0o777, 0o600);

    // ssh failing for another reason says nothing about the key: the record stays.
    assert.equal(await noteSshOutcome(folder, state, 255, "Connection refused"), null);
    assert.ok(await recorded(folder));
    // Any other exit code is the remote command's: the pinned key matched.
    assert.equal(await noteSshOutcome(folder, state, 1, ""), null);
    assert.equal(await recorded(folder), false);
  });
});

Deno.test("status drops a refusal that no longer holds instead of failing", async () => {
  await withMachine(async (folder, state) => {
    const machine = { machineId: "m1", machineFolder: folder };
    await assertNoHostKeyRefusal(machine); // nothing recorded: nothing to do

    await noteSshOutcome(folder, state, 255, OPENSSH_REFUSAL);
    await assertNoHostKeyRefusal(machine); // port 1 is closed now: the refusal is over
    assert.equal(await recorded(folder), false);

    // Recorded for a key this machine no longer pins (it was recreated): stale.
    await noteSshOutcome(
      folder,
      { ...state, hostKeyFingerprint: "SHA256:old" },
      255,
      OPENSSH_REFUSAL,
    );
    await assertNoHostKeyRefusal(machine);
    assert.equal(await recorded(folder), false);

    await Deno.writeTextFile(join(folder, REFUSAL_FILE), "{not json");
    await assertNoHostKeyRefusal(machine);
    assert.equal(await recorded(folder), false);
  });
});

Deno.test("create, start and delete clear a refusal only when they succeed", async () => {
  await withMachine(async (folder, state) => {
    const deps = { machine: { machineId: "m1", machineFolder: folder } };
    await noteSshOutcome(folder, state, 255, OPENSSH_REFUSAL);
    await assert.rejects(clearingRefusal(() => Promise.reject(new Error("boom")))(deps), /boom/);
    assert.ok(await recorded(folder));
    await clearingRefusal(() => Promise.resolve())(deps);
    assert.equal(await recorded(folder), false);
  });
});
