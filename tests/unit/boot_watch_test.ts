import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { DokployApi } from "../../lib/dokploy/api.ts";
import {
  DokployError,
  InterruptedError,
  MachineBootError,
  MachineNotReadyError,
} from "../../lib/errors.ts";
import { silentLogger } from "../../lib/log.ts";
import {
  type BootFailure,
  bootFailureMessage,
  type BootObservation,
  CONFIRM_MS,
  type ContainerView,
  judgeBoot,
  raceBootAgainstSsh,
  uptimeRange,
  waitForMachine,
  watchBoot,
} from "../../lib/machine/boot_watch.ts";
import type { MachineState } from "../../lib/machine/state.ts";

const NAME = "devpod-ws-1-abc123-machine-1";
// Up long enough that the few seconds these polls span cannot look like a restart.
const running: ContainerView = { name: NAME, state: "running", status: "Up About an hour" };
const upFor = (status: string): ContainerView => ({ name: NAME, state: "running", status });
const restarting: ContainerView = {
  name: NAME,
  state: "restarting",
  status: "Restarting (1) 1 second ago",
};
const exited = (code: number): ContainerView => ({
  name: NAME,
  state: "exited",
  status: `Exited (${code}) 1 second ago`,
});

/** Polls at the given seconds, each seeing the given containers. */
const polls = (...seen: [number, ContainerView[]][]): BootObservation[] =>
  seen.map(([s, containers]) => ({ at: s * 1000, containers }));

Deno.test("boot: no poll, running, and [] keep waiting", () => {
  assert.deepEqual(judgeBoot([]), { kind: "waiting" });
  assert.deepEqual(judgeBoot(polls([0, [running]], [5, [running]])), { kind: "waiting" });
  // Dokploy answers [] on any Docker error: no proof of anything, however long.
  assert.deepEqual(judgeBoot(polls([0, []], [30, []], [60, []])), { kind: "waiting" });
  const created = { name: NAME, state: "created", status: "Created" };
  assert.deepEqual(judgeBoot(polls([0, [created]], [5, [created]])), { kind: "waiting" });
});

Deno.test("boot: one transient restart is tolerated", () => {
  assert.deepEqual(
    judgeBoot(polls([0, [restarting]], [1.5, [running]], [3, [running]], [9, [running]])),
    { kind: "waiting" },
  );
  assert.deepEqual(judgeBoot(polls([0, [exited(1)]], [1.5, [running]], [3, []])), {
    kind: "waiting",
  });
});

Deno.test("boot: a failure needs two polls at least CONFIRM_MS apart", () => {
  assert.equal(CONFIRM_MS, 2000);
  assert.deepEqual(judgeBoot(polls([0, [restarting]])), { kind: "waiting" });
  assert.deepEqual(judgeBoot(polls([0, [restarting]], [1.5, [restarting]])), { kind: "waiting" });
  assert.deepEqual(judgeBoot(polls([0, [restarting]], [1.5, [restarting]], [3, [restarting]])), {
    kind: "failed",
    container: NAME,
    how: "restarting",
    exitCode: 1,
  });
});

Deno.test("boot: repeated restarts with a running moment in between still fail", () => {
  assert.deepEqual(
    judgeBoot(polls([0, [restarting]], [1.5, [running]], [3, [restarting]])).kind,
    "failed",
  );
  // …but never while the latest poll shows it running.
  assert.deepEqual(judgeBoot(polls([0, [restarting]], [3, [restarting]], [4.5, [running]])), {
    kind: "waiting",
  });
});

Deno.test("boot: a status saying Restarting counts even when the state lags", () => {
  const lagging = {
    name: NAME,
    state: "running",
    status: "Restarting (127) Less than a second ago",
  };
  assert.deepEqual(judgeBoot(polls([0, [lagging]], [2, [lagging]])), {
    kind: "failed",
    container: NAME,
    how: "restarting",
    exitCode: 127,
  });
});

Deno.test("boot: exited non-zero (restart policy exhausted) fails, dead fails", () => {
  assert.deepEqual(judgeBoot(polls([0, [exited(1)]], [2, [exited(1)]])), {
    kind: "failed",
    container: NAME,
    how: "exited",
    exitCode: 1,
  });
  const dead = { name: NAME, state: "dead", status: "Dead" };
  assert.deepEqual(judgeBoot(polls([0, [dead]], [2.5, [dead]])), {
    kind: "failed",
    container: NAME,
    how: "dead",
    exitCode: null,
  });
  // Restarting, then given up on: the latest poll names the final state.
  assert.deepEqual(judgeBoot(polls([0, [restarting]], [2, [exited(3)]])), {
    kind: "failed",
    container: NAME,
    how: "exited",
    exitCode: 3,
  });
  const noStatus = { name: NAME, state: "exited", status: null };
  assert.deepEqual(judgeBoot(polls([0, [noStatus]], [2, [noStatus]])), {
    kind: "failed",
    container: NAME,
    how: "exited",
    exitCode: null,
  });
});

Deno.test("boot: an uptime that went back is a restart, even never seen restarting", () => {
  // A bootstrap that fails after ~50 s (apt timing out) restarts in 0.1 s: polls see it
  // running, but its uptime starts over.
  assert.deepEqual(
    judgeBoot(polls([0, [upFor("Up 40 seconds")]], [15, [upFor("Up 5 seconds")]])),
    { kind: "waiting" },
    "one restart is tolerated",
  );
  assert.deepEqual(
    judgeBoot(
      polls(
        [0, [upFor("Up 40 seconds")]],
        [15, [upFor("Up 5 seconds")]],
        [66, [upFor("Up 2 seconds")]],
      ),
    ),
    { kind: "failed", container: NAME, how: "restarting", exitCode: null },
  );
  // Steady uptimes, however coarse, are no restart.
  assert.deepEqual(
    judgeBoot(
      polls(
        [0, [upFor("Up Less than a second")]],
        [1.5, [upFor("Up 1 second")]],
        [3, [upFor("Up 3 seconds")]],
        [61, [upFor("Up About a minute")]],
        [130, [upFor("Up 2 minutes")]],
        [200, [upFor("Up 3 minutes (healthy)")]],
      ),
    ),
    { kind: "waiting" },
  );
});

Deno.test("boot: uptimes read from docker's status", () => {
  assert.deepEqual(uptimeRange("Up Less than a second"), [0, 1]);
  assert.deepEqual(uptimeRange("Up 1 second"), [1, 2]);
  assert.deepEqual(uptimeRange("Up 42 seconds"), [42, 43]);
  assert.deepEqual(uptimeRange("Up About a minute"), [60, 120]);
  assert.deepEqual(uptimeRange("Up 5 minutes (unhealthy)"), [300, 360]);
  assert.deepEqual(uptimeRange("Up About an hour"), [3600, 7200]);
  assert.equal(uptimeRange("Up 3 days"), null);
  assert.equal(uptimeRange("Exited (0) 2 seconds ago"), null);
});

Deno.test("boot: exit 0 means the machine stopped by itself", () => {
  assert.deepEqual(judgeBoot(polls([0, [exited(0)]], [2, [exited(0)]])), {
    kind: "stopped",
    container: NAME,
  });
  assert.deepEqual(judgeBoot(polls([0, [exited(0)]])), { kind: "waiting" });
});

Deno.test("boot: any running container means up; a failure outranks a clean exit", () => {
  const other = { name: "devpod-ws-1-abc123-helper-1", state: "exited", status: "Exited (0) 1s" };
  assert.deepEqual(judgeBoot(polls([0, [restarting, running]], [3, [restarting, running]])), {
    kind: "waiting",
  });
  assert.equal(judgeBoot(polls([0, [other, restarting]], [3, [other, restarting]])).kind, "failed");
});

const where = { projectName: "devpod-workspaces", serviceName: "devpod-ws-1", image: "alpine:3" };

Deno.test("boot: failure messages are one line with the log's place and the option", () => {
  const restartingMsg = bootFailureMessage(
    { kind: "failed", container: NAME, how: "restarting", exitCode: 1 },
    where,
  );
  assert.equal(
    restartingMsg,
    `the machine's container keeps restarting (exit code 1): its bootstrap failed (e.g. the image lacks sshd and cannot install packages); read its log in Dokploy: project "devpod-workspaces" → service "devpod-ws-1" → Logs (container ${NAME}); MACHINE_IMAGE alpine:3 may be the cause`,
  );
  const cases: [BootFailure, RegExp][] = [
    [{ kind: "failed", container: NAME, how: "exited", exitCode: 2 }, /exited with code 2: /],
    [{ kind: "failed", container: NAME, how: "exited", exitCode: null }, /code unknown/],
    [{ kind: "failed", container: NAME, how: "dead", exitCode: null }, /container is dead: /],
    [{ kind: "stopped", container: NAME }, /stopped by itself \(exit code 0\).*INACTIVITY_TIMEOUT/],
  ];
  for (const [failure, expected] of cases) {
    const m = bootFailureMessage(failure, where);
    assert.match(m, expected);
    assert.match(m, /project "devpod-workspaces" → service "devpod-ws-1" → Logs/);
    assert.match(m, /MACHINE_IMAGE alpine:3/);
    assert.ok(!m.includes("\n"), "one line");
  }
});

/** A fake clock: `sleep` advances it, so polls are spaced exactly as asked. */
function fakeClock() {
  let t = 0;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

Deno.test("watch: polls at the interval and concludes on the confirming poll", async () => {
  const clock = fakeClock();
  const script = [[running], [restarting], [], [restarting], [restarting]];
  const seenAt: number[] = [];
  const verdict = await watchBoot(
    () => {
      seenAt.push(clock.now());
      return Promise.resolve(script[seenAt.length - 1] ?? [restarting]);
    },
    { signal: new AbortController().signal, deadline: 60_000, intervalMs: 1500, ...clock },
  );
  assert.deepEqual(seenAt, [0, 1500, 3000, 4500]);
  assert.equal(verdict?.kind, "failed");
});

Deno.test("watch: an API error is no evidence; deadline and abort end it with null", async () => {
  const clock = fakeClock();
  let calls = 0;
  const flaky = () => {
    calls++;
    return calls % 2
      ? Promise.reject(new DokployError("cannot reach Dokploy", "x", undefined))
      : Promise.resolve([running]);
  };
  const signal = new AbortController().signal;
  assert.equal(await watchBoot(flaky, { signal, deadline: 10_000, ...clock }), null);
  assert.equal(calls, 7, "one poll per 1.5 s until the deadline");

  const abort = new AbortController();
  abort.abort();
  assert.equal(
    await watchBoot(() => Promise.resolve([restarting]), { signal: abort.signal, deadline: 1e9 }),
    null,
  );

  await assert.rejects(
    watchBoot(() => Promise.reject(new TypeError("a bug")), { signal, deadline: 1e9, ...clock }),
    TypeError,
  );
});

const failure: BootFailure = { kind: "failed", container: NAME, how: "restarting", exitCode: 1 };

/** An SSH wait that never answers: it ends only by abort, as waitUntilReachable does. */
const sshNeverAnswers = (signal: AbortSignal) =>
  new Promise<void>((_, reject) =>
    signal.addEventListener("abort", () => reject(new InterruptedError("aborted")), { once: true })
  );
const watchNeverConcludes = (signal: AbortSignal) =>
  new Promise<null>((resolve) => signal.addEventListener("abort", () => resolve(null)));

Deno.test("race: SSH answering ends the watch", async () => {
  let watchStopped = false;
  const r = await raceBootAgainstSsh(
    () => Promise.resolve(),
    (signal) =>
      new Promise((resolve) =>
        signal.addEventListener("abort", () => {
          watchStopped = true;
          resolve(null);
        })
      ),
    new AbortController().signal,
  );
  assert.equal(r, null);
  assert.ok(watchStopped);
});

Deno.test("race: a boot failure ends the SSH wait", async () => {
  let sshStopped = false;
  const r = await raceBootAgainstSsh(
    (signal) => {
      signal.addEventListener("abort", () => sshStopped = true);
      return sshNeverAnswers(signal);
    },
    () => Promise.resolve(failure),
    new AbortController().signal,
  );
  assert.deepEqual(r, failure);
  assert.ok(sshStopped);
});

Deno.test("race: never a failure once SSH answered", async () => {
  // SSH's last probe succeeds while the watch concludes: the machine is up.
  const r = await raceBootAgainstSsh(
    () => new Promise((resolve) => setTimeout(resolve, 20)),
    () => Promise.resolve(failure),
    new AbortController().signal,
  );
  assert.equal(r, null);
});

Deno.test("race: SSH's own errors pass through when the container looked fine", async () => {
  await assert.rejects(
    raceBootAgainstSsh(
      () => Promise.reject(new MachineNotReadyError("the machine did not answer SSH")),
      watchNeverConcludes,
      new AbortController().signal,
    ),
    MachineNotReadyError,
  );
  // The watch ran out of time first: SSH still has the last word.
  await assert.rejects(
    raceBootAgainstSsh(
      () =>
        new Promise((_, reject) => setTimeout(() => reject(new MachineNotReadyError("late")), 20)),
      () => Promise.resolve(null),
      new AbortController().signal,
    ),
    MachineNotReadyError,
  );
  const user = new AbortController();
  setTimeout(() => user.abort(), 10);
  await assert.rejects(
    raceBootAgainstSsh(sshNeverAnswers, watchNeverConcludes, user.signal),
    InterruptedError,
  );
});

Deno.test({
  name: "waitForMachine: a restart loop fails fast with MachineBootError, not an SSH timeout",
  async fn() {
    // A port nothing listens on: the SSH probe finds it closed every time.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const asked: string[] = [];
    const logAsked: string[] = [];
    const api = {
      containers: (appName: string) => {
        asked.push(appName);
        return Promise.resolve([{ containerId: "c1", ...restarting }]);
      },
      containerLog: (_composeId: string, container: string, _tail: number) => {
        logAsked.push(container);
        return Promise.resolve(
          "2026-12-01T15:00:00.123456789Z [devpod-bootstrap] starting (docker: none)\n" +
            "2026-12-01T15:00:00.223456789Z [devpod-bootstrap] error: cannot install openssh-server\n",
        );
      },
    } as unknown as DokployApi;
    const folder = await Deno.makeTempDir();
    const state = {
      appName: "devpod-ws-1-abc123",
      serverId: null,
      sshHost: "127.0.0.1",
      sshPort: port,
      sshUser: "devpod",
    } as MachineState;
    const d = {
      api,
      config: loadConfig({
        DOKPLOY_SERVER_URL: "https://d.example",
        DOKPLOY_API_TOKEN: "tok-1234",
        MACHINE_IMAGE: "alpine:3",
      }),
      machine: { machineId: "ws-1", machineFolder: folder },
      log: silentLogger,
      signal: new AbortController().signal,
      providerVersion: "test",
    };
    const started = Date.now();
    try {
      await assert.rejects(
        waitForMachine(d, state, Date.now() + 60_000),
        (err: Error) => {
          assert.ok(err instanceof MachineBootError, String(err));
          assert.match(err.message, /keeps restarting \(exit code 1\)/);
          assert.match(err.message, /service "devpod-ws-1" → Logs \(container devpod-ws-1/);
          assert.match(
            err.message,
            /its log ends: \[devpod-bootstrap\] starting \(docker: none\) \| \[devpod-bootstrap\] error: cannot install openssh-server$/,
            "the log tail, without docker's timestamps",
          );
          return true;
        },
      );
      const took = Date.now() - started;
      assert.ok(took >= CONFIRM_MS && took < 10_000, `took ${took} ms`);
      assert.ok(asked.length >= 2 && asked.length <= 4, `${asked.length} polls`);
      assert.ok(asked.every((a) => a === "devpod-ws-1-abc123"));
      assert.deepEqual(logAsked, [NAME]);
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  },
});
