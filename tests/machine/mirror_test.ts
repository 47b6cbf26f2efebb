/**
 * The bootstrap's registry-mirror support (issue 11: one image cache per server), piece by
 * piece under each POSIX shell it must support: the DEVPOD_REGISTRY_MIRROR check, the
 * interface lookup in /proc/net/route, the firewall with stand-in tools, then the firewall
 * for real (iptables, veth pairs between network namespaces, real packets). That dockerd
 * gets the flags is checked on a whole boot in bootstrap_test.ts.
 */
import assert from "node:assert/strict";
import { BOOTSTRAP_SCRIPT } from "../../machine/bootstrap.ts";
import { hasTool, run, skipReason, sleep } from "./harness.ts";

const SHELLS: string[] = [];
for (const shell of ["dash", "bash", "busybox"]) if (await hasTool(shell)) SHELLS.push(shell);
const shellArgs = (shell: string) => (shell === "busybox" ? ["busybox", "ash"] : [shell]);

const MAIN = "\n# ---------------------------------------------------------------- main\n";

/** The script's settings and functions without its main section: a library to call. */
function library(): string {
  const at = BOOTSTRAP_SCRIPT.indexOf(MAIN);
  assert.ok(at > 0, "no main section marker in bootstrap.sh");
  return BOOTSTRAP_SCRIPT.slice(0, at);
}

/** Runs `code` after the bootstrap's definitions under `shell`, in a clean environment. */
function call(shell: string, code: string, env: Record<string, string> = {}) {
  const [cmd, ...pre] = shellArgs(shell);
  return run(cmd, [...pre, "-c", `${library()}\n${code}`, "devpod-bootstrap"], 30_000, {
    PATH: "/usr/bin:/bin",
    ...env,
  });
}

const warning = (text: string) => `[devpod-bootstrap] warning: ${text}\n`;

// ---------------------------------------------------------------- DEVPOD_REGISTRY_MIRROR

/** Value → [MIRROR, MIRROR_HOST, MIRROR_ADDR] once checked. */
const GOOD: [string, [string, string, string]][] = [
  ["", ["", "", ""]],
  [
    "http://devpod-image-cache-ab12cd:5000",
    [
      "http://devpod-image-cache-ab12cd:5000",
      "devpod-image-cache-ab12cd",
      "devpod-image-cache-ab12cd:5000",
    ],
  ],
  [
    "http://devpod-image-cache-ab12cd:5000/",
    [
      "http://devpod-image-cache-ab12cd:5000/",
      "devpod-image-cache-ab12cd",
      "devpod-image-cache-ab12cd:5000",
    ],
  ],
  ["https://mirror.example.com", [
    "https://mirror.example.com",
    "mirror.example.com",
    "mirror.example.com",
  ]],
  ["https://Mirror.Example.com:443/", [
    "https://Mirror.Example.com:443/",
    "Mirror.Example.com",
    "Mirror.Example.com:443",
  ]],
  ["http://10.0.0.7", ["http://10.0.0.7", "10.0.0.7", "10.0.0.7"]],
  ["http://cache:65535", ["http://cache:65535", "cache", "cache:65535"]],
  ["http://cache:1", ["http://cache:1", "cache", "cache:1"]],
];

/** Values that must be refused, never passed on to dockerd. */
const BAD = [
  "cache:5000", // no scheme
  "ftp://cache:5000",
  "HTTP://cache:5000",
  " http://cache:5000",
  "http://",
  "http:///",
  "http://:5000",
  "http://cache:",
  "http://cache:0",
  "http://cache:05000",
  "http://cache:65536",
  "http://cache:123456",
  "http://cache:50a0",
  "http://cache:5000:1",
  "http://cache:5000/v2/",
  "http://cache:5000//",
  "http://cache:5000?x=1",
  "http://cache:5000#x",
  "http://user@cache:5000",
  "http://user:pw@cache:5000",
  "http://[::1]:5000",
  "http://-cache:5000",
  "http://cache-:5000",
  "http://a.-b:5000",
  "http://a-.b:5000",
  "http://a..b:5000",
  "http://.cache:5000",
  "http://cache.:5000",
  "http://cache_1:5000",
  "http://ca che:5000",
  "http://cache:5000 ",
  "http://*:5000",
];

for (const shell of SHELLS) {
  Deno.test(`DEVPOD_REGISTRY_MIRROR under ${shell}: well-formed values kept, others warned about and dropped`, async () => {
    const show = `parse_mirror; printf '%s|%s|%s\\n' "$MIRROR" "$MIRROR_HOST" "$MIRROR_ADDR"`;
    await Promise.all([
      ...GOOD.map(async ([value, expected]) => {
        const out = await call(shell, show, { DEVPOD_REGISTRY_MIRROR: value });
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, `${expected.join("|")}\n`, `value '${value}'`);
        assert.equal(out.stderr, "", `value '${value}'`);
      }),
      ...BAD.map(async (value) => {
        const out = await call(shell, show, { DEVPOD_REGISTRY_MIRROR: value });
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "||\n", `value '${value}' was kept`);
        assert.equal(
          out.stderr,
          warning(
            `DEVPOD_REGISTRY_MIRROR must be http(s)://host[:port], got '${value}'; pulling without a mirror`,
          ),
        );
      }),
    ]);
  });

  Deno.test(`is_ipv4 under ${shell}`, async () => {
    const values = [
      "10.0.0.1",
      "0.0.0.0",
      "255.255.255.255",
      "256.1.1.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "1.2.3.0004",
      "1..3.4",
      "1.2.3.4.",
      "a.b.c.d",
      "",
    ];
    const code = values.map((v) => `is_ipv4 '${v}' && echo 'yes [${v}]' || echo 'no [${v}]'`);
    const out = await call(shell, code.join("\n"));
    assert.equal(out.stderr, "");
    assert.deepEqual(out.stdout.trimEnd().split("\n"), [
      "yes [10.0.0.1]",
      "yes [0.0.0.0]",
      "yes [255.255.255.255]",
      "no [256.1.1.1]",
      "no [1.2.3]",
      "no [1.2.3.4.5]",
      "no [01.2.3.4]",
      "no [1.2.3.0004]",
      "no [1..3.4]",
      "no [1.2.3.4.]",
      "no [a.b.c.d]",
      "no []",
    ]);
  });
}

// ---------------------------------------------------------------- route lookup

/** A container's /proc/net/route as the kernel prints it (tabs, padded lines). */
function routeTable(rows: string[][]): string {
  const header =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
  const lines = rows.map(([iface, dest, gw, flags, mask]) =>
    [iface, dest, gw, flags, "0", "0", "0", mask, "0", "0", "0"].join("\t")
  );
  return [header, ...lines].map((l) => l.padEnd(127, " ")).join("\n") + "\n";
}

const ROUTES = routeTable([
  ["eth0", "00000000", "010012AC", "0003", "00000000"], // default via 172.18.0.1
  ["eth0", "000012AC", "00000000", "0001", "0000FFFF"], // 172.18.0.0/16
  // Nested routes in both orders: the most specific wins wherever it comes.
  ["eth2", "000A14AC", "00000000", "0001", "00FFFFFF"], // 172.20.10.0/24, inside eth1's
  ["eth1", "000014AC", "00000000", "0001", "0000FFFF"], // 172.20.0.0/16
  ["eth7", "000015AC", "00000000", "0001", "0000FFFF"], // 172.21.0.0/16
  ["eth6", "000515AC", "00000000", "0001", "00FFFFFF"], // 172.21.5.0/24, inside eth7's
  ["eth3", "0000000A", "0100000A", "0003", "000000FF"], // 10.0.0.0/8 via a gateway
  ["eth4", "0000A8C0", "00000000", "0000", "0000FFFF"], // 192.168.0.0/16, not up
  ["eth5", "0B0B0B0B", "00000000", "0005", "FFFFFFFF"], // host route 11.11.11.11
]);

for (const shell of SHELLS) {
  Deno.test(`route lookup under ${shell}: the interface of the connected route holding the address`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "devpod-route-" });
    try {
      await Deno.writeTextFile(`${dir}/route`, ROUTES);
      const ips = [
        "172.20.0.5",
        "172.20.255.255",
        "172.20.10.9",
        "172.21.5.5",
        "172.21.6.5",
        "172.18.3.4",
        "11.11.11.11",
        "11.11.11.12",
        "10.1.2.3",
        "192.168.1.1",
        "8.8.8.8",
        "bad.address",
      ];
      const code = `for ip in ${ips.join(" ")}; do
        printf '%s=%s\\n' "$ip" "$(route_iface "$ip" || echo none)"
      done`;
      const out = await call(shell, code, { DEVPOD_PROC_NET_ROUTE: `${dir}/route` });
      assert.equal(out.stderr, "");
      assert.deepEqual(out.stdout.trimEnd().split("\n"), [
        "172.20.0.5=eth1",
        "172.20.255.255=eth1",
        "172.20.10.9=eth2", // the most specific route wins
        "172.21.5.5=eth6",
        "172.21.6.5=eth7",
        "172.18.3.4=eth0", // connected, beside the default route
        "11.11.11.11=eth5",
        "11.11.11.12=none",
        "10.1.2.3=none", // only through a gateway
        "192.168.1.1=none", // route down
        "8.8.8.8=none", // the default route does not count
        "bad.address=none",
      ]);

      const missing = await call(shell, `route_iface 172.20.0.5 || echo none`, {
        DEVPOD_PROC_NET_ROUTE: `${dir}/absent`,
      });
      assert.equal(missing.stdout, "none\n");
      assert.equal(missing.stderr, "");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// ---------------------------------------------------------------- firewall, stand-in tools

/** A getent that knows one name, and an iptables that keeps its rules in a file. */
const GETENT = `#!/bin/sh
case "$1 $2" in
  "ahostsv4 devpod-image-cache-ab12cd")
    printf '%s\\n' '172.20.0.5      STREAM devpod-image-cache-ab12cd' '172.20.0.5      DGRAM  ' ;;
  *) exit 2 ;;
esac
`;
const IPTABLES = `#!/bin/sh
PATH=/usr/bin:/bin
printf '%s\\n' "$*" >>"$STUB_DIR/calls"
if [ -n "\${IPTABLES_FAIL:-}" ]; then echo "iptables: stub failure" >&2; exit 4; fi
args=$*
case $args in
  *"-C PREROUTING "*) grep -qxF -- "\${args#*-C PREROUTING }" "$STUB_DIR/rules" 2>/dev/null; exit ;;
  *"-I PREROUTING 1 "*) rule=\${args#*-I PREROUTING 1 } ;;
  *"-A PREROUTING "*) rule=\${args#*-A PREROUTING } ;;
  *) exit 2 ;;
esac
printf '%s\\n' "$rule" >>"$STUB_DIR/rules"
`;

for (const shell of SHELLS) {
  Deno.test(`firewall under ${shell} with stand-in getent and iptables: rules once, warnings otherwise`, async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "devpod-firewall-" });
    try {
      await Deno.writeTextFile(`${dir}/route`, ROUTES);
      // PATH is set to one of these alone: the real getent and iptables stay out of reach.
      for (
        const [bin, tools] of Object.entries({
          both: ["getent", "iptables"],
          "no-iptables": ["getent"],
          "no-getent": ["iptables"],
        })
      ) {
        await Deno.mkdir(`${dir}/${bin}`);
        for (const tool of tools) {
          await Deno.writeTextFile(`${dir}/${bin}/${tool}`, tool === "getent" ? GETENT : IPTABLES, {
            mode: 0o755,
          });
        }
      }
      const read = (f: string) => Deno.readTextFile(`${dir}/${f}`).catch(() => "");
      const firewall = async (mirror: string, bin = "both", env: Record<string, string> = {}) => {
        await Deno.remove(`${dir}/calls`).catch(() => {});
        const out = await call(
          shell,
          `PATH=$BIN\nparse_mirror\nmirror_firewall\necho "status $?"`,
          {
            BIN: `${dir}/${bin}`,
            STUB_DIR: dir,
            DEVPOD_REGISTRY_MIRROR: mirror,
            DEVPOD_SSHD_PORT: "2222",
            DEVPOD_PROC_NET_ROUTE: `${dir}/route`,
            ...env,
          },
        );
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "status 0\n", "mirror_firewall must never fail the boot");
        return {
          log: out.stderr,
          calls: (await read("calls")).trimEnd().split("\n").filter(Boolean),
        };
      };
      const MIRROR = "http://devpod-image-cache-ab12cd:5000";
      const ACCEPT = "-i eth1 -p tcp --dport 2222 -j ACCEPT";
      const DROP = "-i eth1 -m conntrack --ctstate NEW -j DROP";

      await t.step(
        "first boot: sshd's port accepted first, then every other new connection dropped",
        async () => {
          const { log, calls } = await firewall(MIRROR);
          assert.match(
            log,
            /^\[devpod-bootstrap\] firewall: on eth1 \(devpod-image-cache-ab12cd 172\.20\.0\.5\) only tcp port 2222 accepts new connections, in \d+\.\d\ds\n$/,
          );
          assert.deepEqual(calls, [
            `-t mangle -C PREROUTING ${ACCEPT}`,
            `-t mangle -I PREROUTING 1 ${ACCEPT}`,
            `-t mangle -C PREROUTING ${DROP}`,
            `-t mangle -A PREROUTING ${DROP}`,
          ]);
          assert.equal(await read("rules"), `${ACCEPT}\n${DROP}\n`);
        },
      );

      await t.step("second boot, rules still there: only checked, nothing added", async () => {
        const { log, calls } = await firewall(`${MIRROR}/`);
        assert.match(log, /firewall: on eth1 /);
        assert.deepEqual(calls, [
          `-t mangle -C PREROUTING ${ACCEPT}`,
          `-t mangle -C PREROUTING ${DROP}`,
        ]);
        assert.equal(await read("rules"), `${ACCEPT}\n${DROP}\n`);
      });

      await t.step("a lost ACCEPT comes back before the DROP", async () => {
        await Deno.writeTextFile(`${dir}/rules`, `${DROP}\n`);
        const { calls } = await firewall(MIRROR);
        assert.deepEqual(calls, [
          `-t mangle -C PREROUTING ${ACCEPT}`,
          `-t mangle -I PREROUTING 1 ${ACCEPT}`,
          `-t mangle -C PREROUTING ${DROP}`,
        ]);
      });

      await t.step(
        "an address needs no getent; one outside every connected route: a warning",
        async () => {
          const { log, calls } = await firewall("http://10.1.2.3:5000", "no-getent");
          assert.equal(
            log,
            warning(
              "no interface has a route to 10.1.2.3 (10.1.2.3): no firewall on the registry mirror's network",
            ),
          );
          assert.deepEqual(calls, []);
          const ok = await firewall("http://172.20.10.9:5000", "no-getent");
          assert.match(ok.log, /firewall: on eth2 \(172\.20\.10\.9 172\.20\.10\.9\)/);
        },
      );

      await t.step(
        "unresolvable name, missing tools, failing iptables: one warning, no failure",
        async () => {
          const cases: [string, string, Record<string, string>, string][] = [
            [
              "http://nowhere:5000",
              "both",
              {},
              "cannot resolve nowhere: no firewall on the registry mirror's network",
            ],
            [
              MIRROR,
              "no-iptables",
              {},
              "iptables not found: no firewall on the registry mirror's network",
            ],
            [
              MIRROR,
              "no-getent",
              {},
              "getent not found: no firewall on the registry mirror's network",
            ],
            [
              MIRROR,
              "both",
              { IPTABLES_FAIL: "1" },
              "iptables failed (iptables: stub failure): no firewall on the registry mirror's network",
            ],
          ];
          for (const [mirror, bin, env, text] of cases) {
            const { log } = await firewall(mirror, bin, env);
            assert.equal(log, warning(text), `${mirror} with ${bin} ${JSON.stringify(env)}`);
          }
        },
      );

      await t.step("no mirror, or a malformed one: no firewall, no tool run", async () => {
        for (const mirror of ["", "http://cache:5000/v2"]) {
          const { log, calls } = await firewall(mirror);
          assert.doesNotMatch(log, /firewall/);
          assert.deepEqual(calls, []);
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// ---------------------------------------------------------------- firewall for real

const netSkip = await skipReason(["unshare", "nsenter", "ip", "iptables", "busybox"]);

/**
 * Three network namespaces as Docker would wire a machine: `machine` has its own network
 * (m-out, default route, 10.98.0.0/24, towards `outside`: Dokploy, published ports) and the
 * cache's network (m-cache, 10.99.0.0/24, towards `peer`: the cache and the other machines).
 * Each namespace is held by a `sleep`; killing every process started here tears it all down.
 */
class Net {
  #procs: Deno.ChildProcess[] = [];
  pids: Record<"machine" | "peer" | "outside", number> = { machine: 0, peer: 0, outside: 0 };

  #spawn(cmd: string, args: string[]): Deno.ChildProcess {
    const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    this.#procs.push(child);
    return child;
  }

  /** Runs `sh -c script` in namespace `ns`. */
  async sh(ns: keyof Net["pids"], script: string, timeoutMs = 10_000) {
    return await run(
      "nsenter",
      [`--net=/proc/${this.pids[ns]}/ns/net`, "sh", "-c", script],
      timeoutMs,
    );
  }

  async setup(): Promise<void> {
    for (const ns of ["machine", "peer", "outside"] as const) {
      // Without --fork, unshare becomes the sleep: its pid holds the namespace.
      this.pids[ns] = this.#spawn("unshare", ["--net", "sleep", "300"]).pid;
    }
    await sleep(100);
    const { peer, outside } = this.pids;
    const steps: [keyof Net["pids"], string][] = [
      [
        "machine",
        `set -e; ip link set lo up
        ip link add m-cache type veth peer name p-cache netns ${peer}
        ip link add m-out type veth peer name o-out netns ${outside}
        ip addr add 10.99.0.2/24 dev m-cache; ip link set m-cache up
        ip addr add 10.98.0.2/24 dev m-out; ip link set m-out up
        ip route add default via 10.98.0.1`,
      ],
      [
        "peer",
        "set -e; ip link set lo up; ip addr add 10.99.0.1/24 dev p-cache; ip link set p-cache up",
      ],
      [
        "outside",
        "set -e; ip link set lo up; ip addr add 10.98.0.1/24 dev o-out; ip link set o-out up",
      ],
    ];
    for (const [ns, script] of steps) {
      const out = await this.sh(ns, script);
      assert.equal(out.code, 0, `${ns}: ${out.stderr}`);
    }
  }

  /** A TCP server in `ns` on `port` that answers every connection with `word`. */
  listen(ns: keyof Net["pids"], port: number, word: string): void {
    this.#spawn("nsenter", [
      `--net=/proc/${this.pids[ns]}/ns/net`,
      "busybox",
      "nc",
      "-ll",
      "-p",
      String(port),
      "-e",
      "echo",
      word,
    ]);
  }

  /** What a connection from `ns` to addr:port reads ("" when no connection is made in 1 s). */
  async connect(ns: keyof Net["pids"], addr: string, port: number): Promise<string> {
    const out = await this.sh(ns, `busybox nc -w 1 ${addr} ${port} </dev/null`);
    return out.code === 0 ? out.stdout.trim() : "";
  }

  async dispose(): Promise<void> {
    for (const p of this.#procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await Promise.all(this.#procs.map((p) => p.status));
  }
}

for (const shell of SHELLS) {
  Deno.test({
    name: `firewall under ${shell} for real (iptables, network namespaces): ` +
      "the cache's network reaches sshd only; pulls and the machine's own network unaffected" +
      (netSkip ? ` (skipped: ${netSkip})` : ""),
    ignore: netSkip !== undefined,
    async fn() {
      const net = new Net();
      const dir = await Deno.makeTempDir({ prefix: "devpod-firewall-net-" });
      try {
        await net.setup();
        net.listen("machine", 2222, "sshd");
        net.listen("machine", 8080, "web");
        net.listen("peer", 5000, "registry");
        net.listen("outside", 5001, "hub");
        await sleep(200);

        const reach = () =>
          Promise.all([
            net.connect("peer", "10.99.0.2", 2222),
            net.connect("peer", "10.99.0.2", 8080),
            net.connect("outside", "10.98.0.2", 8080),
            net.connect("machine", "10.99.0.1", 5000),
            net.connect("machine", "10.98.0.1", 5001),
          ]);
        // Without the firewall everything connects, so the drops below are the firewall's.
        assert.deepEqual(await reach(), ["sshd", "web", "web", "registry", "hub"]);

        // The name resolves through a hosts file of a private mount namespace, with the
        // host's real getent; the route table is the namespace's real one.
        await Deno.writeTextFile(`${dir}/hosts`, "10.99.0.1 devpod-image-cache-net\n");
        await Deno.writeTextFile(
          `${dir}/boot.sh`,
          `${library()}\nparse_mirror\nmirror_firewall\nmirror_firewall\n`,
        );
        const [cmd, ...pre] = shellArgs(shell);
        const env = {
          PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
          DEVPOD_REGISTRY_MIRROR: "http://devpod-image-cache-net:5000",
          DEVPOD_SSHD_PORT: "2222",
        };
        const boot = await run(
          "nsenter",
          [
            `--net=/proc/${net.pids.machine}/ns/net`,
            "unshare",
            "--mount",
            "sh",
            "-c",
            `mount --bind "$1" /etc/hosts && shift && exec "$@"`,
            "sh",
            `${dir}/hosts`,
            cmd,
            ...pre,
            `${dir}/boot.sh`,
          ],
          30_000,
          env,
        );
        assert.equal(boot.code, 0, boot.stderr);
        const line =
          /\[devpod-bootstrap\] firewall: on m-cache \(devpod-image-cache-net 10\.99\.0\.1\) only tcp port 2222 accepts new connections, in \d+\.\d\ds\n/;
        assert.match(
          boot.stderr,
          new RegExp(`^${line.source}${line.source}$`),
          "run twice, no warning",
        );

        // Run twice, the rules are there once.
        const rules = await net.sh("machine", "iptables -t mangle -S PREROUTING");
        assert.equal(rules.code, 0, rules.stderr);
        assert.deepEqual(rules.stdout.trimEnd().split("\n"), [
          "-P PREROUTING ACCEPT",
          "-A PREROUTING -i m-cache -p tcp -m tcp --dport 2222 -j ACCEPT",
          "-A PREROUTING -i m-cache -m conntrack --ctstate NEW -j DROP",
        ]);

        assert.deepEqual(await reach(), ["sshd", "", "web", "registry", "hub"]);
      } finally {
        await net.dispose();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
