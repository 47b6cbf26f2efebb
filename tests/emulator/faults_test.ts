/** Fault injection and latency, as a client sees them over the network. */
import assert from "node:assert/strict";
import { startEmulator } from "./mod.ts";
import { call, ok } from "./test_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "faults: status injection applies `times` calls, then normal handling",
  opts,
  async () => {
    const emu = await startEmulator();
    try {
      emu.faults.add({ procedure: "settings.getDokployVersion", status: 503, times: 2 });
      const first = await call(emu, "GET", "settings.getDokployVersion");
      assert.equal(first.status, 503);
      assert.equal((await call(emu, "GET", "settings.getDokployVersion")).status, 503);
      assert.equal(await ok(emu, "GET", "settings.getDokployVersion"), "v0.30.2");

      emu.faults.add({ procedure: "*", status: 401 });
      const unauthorized = await call(emu, "GET", "project.all");
      assert.deepEqual(unauthorized, { status: 401, body: { message: "Unauthorized" } });

      emu.faults.add({
        procedure: "project.all",
        status: 500,
        body: { message: "boom" },
        times: Infinity,
      });
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await call(emu, "GET", "project.all"), {
          status: 500,
          body: { message: "boom" },
        });
      }
      emu.faults.clear();
      assert.equal((await call(emu, "GET", "project.all")).status, 200);
    } finally {
      await emu.close();
    }
  },
);

Deno.test("faults: delay slows the answer; latencyMs delays every response", opts, async () => {
  const emu = await startEmulator({ latencyMs: 50 });
  try {
    let t = performance.now();
    await ok(emu, "GET", "settings.health");
    assert.ok(performance.now() - t >= 45, "latency applied");

    emu.faults.add({ procedure: "settings.health", delayMs: 300 });
    t = performance.now();
    assert.deepEqual(await ok(emu, "GET", "settings.health"), { status: "ok" });
    assert.ok(performance.now() - t >= 300, "delay applied, then normal answer");

    // A client timeout shorter than the delay sees a timeout, not a response.
    emu.faults.add({ procedure: "settings.health", delayMs: 1000 });
    await assert.rejects(
      fetch(`${emu.url}/api/settings.health`, {
        headers: { "x-api-key": emu.token },
        signal: AbortSignal.timeout(100),
      }),
    );
  } finally {
    await emu.close();
  }
});

Deno.test("faults: drop closes the connection without an HTTP answer", opts, async () => {
  const emu = await startEmulator();
  try {
    emu.faults.add({ procedure: "compose.deploy", drop: true });
    await assert.rejects(
      fetch(`${emu.url}/api/compose.deploy`, {
        method: "POST",
        headers: { "x-api-key": emu.token, "content-type": "application/json" },
        body: JSON.stringify({ composeId: "x" }),
        signal: AbortSignal.timeout(5000),
      }),
      (e: Error) => e instanceof TypeError, // a network error, not a timeout or an HTTP status
    );
    assert.equal(emu.requests.at(-1)?.status, 0);
    // The rule is used up: the next call reaches the handler.
    assert.equal((await call(emu, "POST", "compose.deploy", { composeId: "x" })).status, 404);
  } finally {
    await emu.close();
  }
});
