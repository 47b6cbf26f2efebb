import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { Server } from "../../lib/dokploy/api.ts";
import { findServer, isUsable, serverName } from "../../lib/servers/directory.ts";
import { type Candidate, choosePlacement, type Load } from "../../lib/servers/placement.ts";
import { capacityOf } from "../../lib/servers/target.ts";
import { unreachableReason } from "../../lib/servers/unreachable.ts";
import { describeMachine, parseMarker } from "../../lib/machine/naming.ts";

const server = (serverId: string, name: string, extra: Partial<Server> = {}): Server => ({
  serverId,
  name,
  ipAddress: `10.0.0.${serverId.length}`,
  serverStatus: "active",
  serverType: "deploy",
  ...extra,
});

const SERVERS = [
  server("s1", "alpha"),
  server("s22", "beta"),
  server("s333", "gamma", { serverStatus: "inactive" }),
  server("s4444", "builder", { serverType: "build" }),
];

Deno.test("DOKPLOY_SERVER_ID: empty and local mean the host, auto, else a name or id", () => {
  const base = { DOKPLOY_SERVER_URL: "https://d.example", DOKPLOY_API_TOKEN: "t" };
  const of = (v: string) => loadConfig({ ...base, DOKPLOY_SERVER_ID: v }).server;
  assert.deepEqual(of(""), { kind: "local" });
  assert.deepEqual(of("LOCAL"), { kind: "local" });
  assert.deepEqual(of("auto"), { kind: "auto" });
  assert.deepEqual(of("my server"), { kind: "named", ref: "my server" });
  assert.throws(
    () => of("a;rm -rf"),
    /^ConfigError: DOKPLOY_SERVER_ID must be a server id or name/,
  );
});

Deno.test("servers: found by id, then by name; unknown, build and inactive ones refused", () => {
  assert.equal(findServer(SERVERS, "s22").name, "beta");
  assert.equal(findServer(SERVERS, "Alpha").serverId, "s1");
  assert.throws(
    () => findServer(SERVERS, "delta"),
    (e: Error) =>
      e.message ===
        'DOKPLOY_SERVER_ID "delta" is not a server of this Dokploy; servers: s1 (alpha, active), s22 (beta, active), s333 (gamma, inactive), s4444 (builder, active, build only); set DOKPLOY_SERVER_ID to one of them, local or auto',
  );
  assert.throws(() => findServer(SERVERS, "builder"), /is a build server/);
  assert.throws(() => findServer(SERVERS, "gamma"), /is inactive in Dokploy; activate it there/);
  assert.throws(() => findServer([], "x"), /this Dokploy has no remote servers/);
  assert.deepEqual(SERVERS.filter(isUsable).map((s) => s.name), ["alpha", "beta"]);
  assert.equal(serverName(null, SERVERS), "local");
  assert.equal(serverName("s22", SERVERS), "beta");
});

const want = { cpus: 2, memoryMiB: 4096 };
const load = (cpus: number, memoryMiB = cpus * 2048, machines = 1): Load => ({
  cpus,
  memoryMiB,
  machines,
});

Deno.test("placement: without capacity, the fewest requested CPUs, then memory", () => {
  const c: Candidate[] = [
    { serverId: "a", name: "alpha" },
    { serverId: "b", name: "beta" },
    { serverId: "c", name: "gamma" },
  ];
  const p = choosePlacement(
    c,
    new Map([["a", load(4)], ["b", load(2, 8192)], ["c", load(2)]]),
    want,
    "m1",
  );
  assert.equal(p.candidate.name, "gamma");
  assert.equal(
    p.reason,
    "server auto: placed on gamma: the fewest CPUs requested by our machines (alpha 4 CPU/8 GiB, beta 2 CPU/8 GiB, gamma 2 CPU/4 GiB)",
  );
  // A server that reports capacity does not switch the rule when another does not.
  const mixed = choosePlacement(
    [{ ...c[0], capacity: { cpus: 64, memoryMiB: 262144 } }, c[1]],
    new Map([["a", load(4)]]),
    want,
    "m1",
  );
  assert.equal(mixed.candidate.name, "beta");
  assert.match(mixed.reason, /not every server reports its capacity/);
});

Deno.test("placement: with every capacity known, the most headroom after the machine", () => {
  const c: Candidate[] = [
    { serverId: "a", name: "small", capacity: { cpus: 4, memoryMiB: 8192 } },
    { serverId: "b", name: "big", capacity: { cpus: 32, memoryMiB: 131072 } },
  ];
  // The big one holds more already, but keeps the larger share free.
  const p = choosePlacement(c, new Map([["b", load(8, 16384)]]), want, "m1");
  assert.equal(p.candidate.name, "big");
  assert.match(
    p.reason,
    /the most headroom for 2 CPU\/4 GiB \(small 50% free after, big 69% free after\)/,
  );
  // Memory counts too: a server short of memory loses despite idle CPUs.
  const tight = choosePlacement(
    [
      { serverId: "a", name: "cpu-rich", capacity: { cpus: 64, memoryMiB: 8192 } },
      { serverId: "b", name: "even", capacity: { cpus: 16, memoryMiB: 65536 } },
    ],
    new Map(),
    { cpus: 2, memoryMiB: 6144 },
    "m1",
  );
  assert.equal(tight.candidate.name, "even");
});

Deno.test("placement: ties are deterministic per machine, and spread machines", () => {
  const c: Candidate[] = ["a", "b", "c"].map((id) => ({ serverId: id, name: id }));
  const pick = (id: string) => choosePlacement(c, new Map(), want, id).candidate.serverId;
  for (const id of ["w1", "w2", "w3"]) assert.equal(pick(id), pick(id), "same input, same answer");
  const picks = new Set(Array.from({ length: 12 }, (_, i) => pick(`ws-${i}`)));
  assert.ok(picks.size >= 2, `12 machines on equal servers use more than one: ${[...picks]}`);
  // Order of the candidate list does not matter.
  assert.equal(
    choosePlacement([...c].reverse(), new Map(), want, "w1").candidate.serverId,
    pick("w1"),
  );
});

Deno.test("capacity: cores and total memory from monitoring's newest data point", () => {
  assert.deepEqual(
    capacityOf([{ cpuCores: 2, memTotal: "3.8" }, { cpuCores: 8, memTotal: "31.2" }]),
    {
      cpus: 8,
      memoryMiB: 31949,
    },
  );
  assert.equal(capacityOf([]), undefined);
  assert.equal(capacityOf([{ cpuCores: 0, memTotal: "1" }]), undefined);
});

Deno.test("unreachable: Dokploy's SSH failures, not other errors", () => {
  assert.equal(
    unreachableReason(
      new Error(
        "Dokploy failed on compose.stop (500: SSH connection error: connect ECONNREFUSED 10.0.0.2:22)",
      ),
    ),
    "SSH connection error: connect ECONNREFUSED 10.0.0.2:22",
  );
  assert.match(
    unreachableReason("Authentication failed: Invalid SSH private key. ❌")!,
    /^Authentication failed/,
  );
  assert.equal(unreachableReason(new Error("500: port is already allocated")), null);
});

Deno.test("marker: carries the machine's size; older markers still parse", () => {
  const meta = { providerVersion: "v1", owner: "me@h" };
  const d = describeMachine({ machineId: "ws", sshPort: 32200, cpus: 1.5, memoryMiB: 3072 }, meta);
  assert.deepEqual(parseMarker(d), { machineId: "ws", sshPort: 32200, cpus: 1.5, memoryMiB: 3072 });
  assert.deepEqual(parseMarker("x [devpod-machine-id=ws;port=32200]"), {
    machineId: "ws",
    sshPort: 32200,
  });
});
