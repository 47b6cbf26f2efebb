/**
 * Runs machine/bootstrap.sh for real in a minimal Debian bookworm root fs (chroot), as
 * PID 1 of its own PID namespace, the way a container runs it: the first boot installs
 * openssh-server and sudo with apt (the "any image" fallback path), later boots install
 * and change nothing; then DevPod's view: ssh as `devpod` with the pinned host key,
 * no root or password login, docker stop, and the idle watchdog.
 */
import { agentCurl, WRAPPER_DIR } from "../../lib/agent/spec.ts";
import assert from "node:assert/strict";
import {
  execBootstrap,
  freePort,
  keygen,
  layerRoot,
  type Machine,
  readyTime,
  run,
  skipReason,
  sleep,
  snapshot,
  spawnInNamespace,
  sshArgs,
} from "./harness.ts";
import { ensureRootfs } from "./rootfs.ts";

const READY = /\[devpod-bootstrap\] ready in/;
const skip = await skipReason(["unshare", "chroot", "debootstrap", "sshd", "ssh", "ssh-keygen"]);

Deno.test({
  name: "bootstrap as PID 1 in a Debian root fs: boots, ssh, stop, idle watchdog, dind, uid 1000" +
    (skip ? ` (skipped: ${skip})` : ""),
  ignore: skip !== undefined,
  async fn(t) {
    const lower = await ensureRootfs();
    const dir = await Deno.makeTempDir({ prefix: "devpod-bootstrap-" });
    const machines: Machine[] = [];
    try {
      const layer = await layerRoot(lower, dir);
      const host = await keygen(dir, "host");
      const client = await keygen(dir, "client");
      const port = freePort();
      const knownHosts = `${dir}/known_hosts`;
      await Deno.writeTextFile(knownHosts, `[127.0.0.1]:${port} ${host.pub}\n`);
      const hostKeyB64 = btoa(await Deno.readTextFile(host.path));

      const boot = async (
        opts: {
          shell: string;
          timeout: number;
          before?: string;
          docker?: "dind";
          env?: Record<string, string>;
        },
      ) => {
        // One machine at a time on this root fs and port, even after a failed step.
        for (const old of machines) await old.dispose();
        const m = spawnInNamespace(
          [
            "set -e",
            layer.prelude,
            `mount -t proc proc '${layer.root}/proc'`,
            `mount --rbind /dev '${layer.root}/dev'`,
            // Root may log in with the same key if sshd let it: the test shows it does not.
            `mkdir -p '${layer.root}/root/.ssh'`,
            `printf '%s\\n' "$ROOT_KEY" > '${layer.root}/root/.ssh/authorized_keys'`,
            "unset ROOT_KEY",
            opts.before ?? ":",
            execBootstrap(opts.shell, layer.root),
          ].join("\n"),
          {
            ROOT_KEY: client.pub,
            DEVPOD_HOST_KEY_B64: hostKeyB64,
            DEVPOD_AUTHORIZED_KEY: client.pub,
            DEVPOD_INACTIVITY_TIMEOUT: String(opts.timeout),
            DEVPOD_DOCKER_MODE: opts.docker ?? "none",
            DEVPOD_SSHD_PORT: String(port),
            DEVPOD_SSHD_LISTEN: "127.0.0.1",
            ...opts.env,
          },
        );
        machines.push(m);
        return m;
      };
      const ssh = (command: string, opts: { user?: string; extra?: string[]; kh?: string } = {}) =>
        run("ssh", [
          ...sshArgs({
            port,
            key: client.path,
            knownHosts: opts.kh ?? knownHosts,
            user: opts.user,
            extra: opts.extra,
          }),
          command,
        ]);
      const stop = async (m: Machine) => {
        await m.signal("SIGTERM");
        const status = await m.status(15_000);
        assert.equal(status.code, 0, m.log);
        assert.match(m.log, /signal received: stopping/);
      };
      const bootTimes: string[] = [];

      await t.step("first boot: apt installs sshd and sudo; devpod logs in", async () => {
        const m = await boot({ shell: "/bin/sh", timeout: 0 });
        await m.waitForLog(READY, 300_000);
        assert.match(m.log, /packages: installing .*openssh-server.*sudo/);
        bootTimes.push(`first boot (apt install): ${readyTime(m.log)} s`);

        // StrictHostKeyChecking with only the provider's key: proves it is the one presented.
        const out = await ssh([
          "id -u; id -un; sudo -n true && echo sudo-ok",
          "stat -c '%a %U' ~/.ssh ~/.ssh/authorized_keys",
          "sudo -n stat -c '%a %U' /etc/sudoers.d/devpod /etc/ssh/devpod_host_ed25519_key",
          "sudo -n grep ^devpod: /etc/shadow | cut -d: -f2",
        ].join("; "));
        assert.equal(out.code, 0, `${out.stderr}\n${m.log}`);
        assert.deepEqual(out.stdout.trim().split("\n"), [
          "1000",
          "devpod",
          "sudo-ok",
          "700 devpod",
          "600 devpod",
          "440 root",
          "600 root",
          "*",
        ]);

        // The host keys apt generated exist but are not served.
        const aptKey = await Deno.readTextFile(`${layer.changes}/etc/ssh/ssh_host_ed25519_key.pub`);
        const otherKh = `${dir}/known_hosts.apt`;
        await Deno.writeTextFile(otherKh, `[127.0.0.1]:${port} ${aptKey}`);
        const wrongKey = await ssh("true", { kh: otherKh });
        assert.equal(wrongKey.code, 255);
        assert.match(wrongKey.stderr, /Host key verification failed|IDENTIFICATION HAS CHANGED/);

        const asRoot = await ssh("true", { user: "root" });
        assert.equal(asRoot.code, 255);
        assert.match(asRoot.stderr, /Permission denied/);

        const password = await ssh("true", {
          extra: ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"],
        });
        assert.equal(password.code, 255);
        assert.match(password.stderr, /Permission denied/);

        await stop(m);
      });

      await t.step("second boot (bash): installs nothing, changes nothing, ssh works", async () => {
        const skip = ["run", "proc", "dev", "root/.ssh", "var/log"]; // the test's or logins'
        const before = await snapshot(layer.changes, skip);
        const m = await boot({ shell: "/bin/bash", timeout: 0 });
        await m.waitForLog(READY, 30_000);
        assert.deepEqual(await snapshot(layer.changes, skip), before, "the root fs changed");
        assert.match(m.log, /packages: nothing to install/);
        assert.doesNotMatch(m.log, /installing|created/);
        bootTimes.push(`second boot (nothing to do): ${readyTime(m.log)} s`);

        const out = await ssh("id -u; sudo -n true && echo sudo-ok");
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "1000\nsudo-ok\n");
        await stop(m);
        console.log(bootTimes.map((l) => `  ${l}`).join("\n"));
      });

      await t.step(
        "DEVPOD_DISABLE_TELEMETRY=true and the agent cache's curl: every session sees them, telemetry under DevPod's and Devsy's names (sshd SetEnv), and not otherwise",
        async () => {
          const telemetry = () =>
            ssh(
              "printenv DEVPOD_DISABLE_TELEMETRY || echo unset; printenv DEVSY_DISABLE_TELEMETRY || echo unset; command -v curl",
            );
          // As compose hands it to the machine: its $$ undoubled.
          const wrapper = agentCurl("devpod-image-cache-t1").replaceAll("$$", "$");
          const on = await boot({
            shell: "/bin/sh",
            timeout: 0,
            env: { DEVPOD_DISABLE_TELEMETRY: "true", DEVPOD_AGENT_CURL: wrapper },
          });
          await on.waitForLog(READY, 30_000);
          assert.match(
            on.log,
            /SetEnv DEVPOD_DISABLE_TELEMETRY=true DEVSY_DISABLE_TELEMETRY=true PATH=\S+, config ok/,
          );
          const seen = await telemetry();
          assert.equal(seen.code, 0, `${seen.stderr}\n${on.log}`);
          assert.equal(seen.stdout, `true\ntrue\n${WRAPPER_DIR}/curl\n`);
          await stop(on);

          const off = await boot({ shell: "/bin/sh", timeout: 0 });
          await off.waitForLog(READY, 30_000);
          const plain = (await telemetry()).stdout;
          assert.match(
            plain,
            /^unset\nunset\n\/usr\/(local\/)?bin\/curl\n$/,
            "the config is rewritten without them",
          );
          await stop(off);
        },
      );

      await t.step("idle for 3 s with no session: PID 1 exits 0 by itself", async () => {
        const m = await boot({ shell: "/bin/sh", timeout: 3 });
        await m.waitForLog(READY, 30_000);
        const ready = Date.now();
        const status = await m.status(15_000);
        assert.equal(status.code, 0, m.log);
        assert.match(m.log, /stopped after 3s without an SSH session/);
        console.log(`  idle stop ${((Date.now() - ready) / 1000).toFixed(1)} s after ready`);
      });

      await t.step("an open ssh session keeps it running past the timeout", async () => {
        const m = await boot({ shell: "/bin/sh", timeout: 3 });
        await m.waitForLog(READY, 30_000);
        const session = ssh("sleep 8");
        await sleep(6_000);
        assert.equal(m.exited, false, `stopped during a session:\n${m.log}`);
        assert.equal((await session).code, 0);
        // Once the session is gone it is idle again and stops by itself.
        const status = await m.status(15_000);
        assert.equal(status.code, 0, m.log);
        assert.match(m.log, /without an SSH session/);
      });

      await t.step(
        "dind mode with a stand-in dockerd: waited for, docker group, stopped",
        async () => {
          // A real dockerd needs a privileged container; this checks the bootstrap's part.
          const bin = `${layer.root}/usr/local/bin`;
          const m = await boot({
            shell: "/bin/sh",
            timeout: 0,
            docker: "dind",
            before: [
              `chroot '${layer.root}' groupadd -f docker`,
              `printf '%s\n' '#!/bin/sh' 'trap "echo dockerd-stopped; rm -f /run/up; exit 0" TERM' \
              'sleep 1; touch /run/up; echo dockerd-up' 'sleep 600 & wait' > '${bin}/dockerd'`,
              `printf '%s\n' '#!/bin/sh' 'test -e /run/up' > '${bin}/docker'`,
              `chmod 755 '${bin}/dockerd' '${bin}/docker'`,
            ].join("\n"),
          });
          await m.waitForLog(READY, 30_000);
          assert.match(m.log, /packages: nothing to install/);
          assert.match(m.log, /docker: ready in/);
          const out = await ssh("id -nG");
          assert.equal(out.code, 0, `${out.stderr}\n${m.log}`);
          assert.ok(out.stdout.split(/\s+/).includes("docker"), out.stdout);
          await stop(m);
          const dockerdLog = await Deno.readTextFile(`${layer.changes}/run/devpod/dockerd.log`);
          assert.equal(dockerdLog, "dockerd-up\ndockerd-stopped\n");
        },
      );

      await t.step(
        "dind with DEVPOD_REGISTRY_MIRROR: firewall, then dockerd with the mirror flags",
        async () => {
          // Stand-ins record what they are asked: dockerd its argv, iptables its calls (the
          // chroot shares the host's network namespace: no real rule may be added from it).
          const stubs = `${dir}/mirror-stubs`;
          await Deno.mkdir(stubs, { recursive: true });
          const files: Record<string, string> = {
            dockerd: [
              "#!/bin/sh",
              // One [word] per argument: shows where each begins and ends.
              'printf dockerd-args:; for a in "$@"; do printf \' [%s]\' "$a"; done; echo',
              'trap "rm -f /run/up; exit 0" TERM',
              "touch /run/up",
              "sleep 600 & wait",
            ].join("\n"),
            docker: "#!/bin/sh\ntest -e /run/up",
            iptables: [
              "#!/bin/sh",
              "printf '%s\\n' \"$*\" >>/run/iptables.calls",
              'case " $* " in *" -C "*) exit 1 ;; esac',
            ].join("\n"),
            // The machine's own network (default route) and the cache's, as Docker wires them.
            route: [
              "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
              "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0",
              "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
              "eth1\t0000630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
            ].join("\n"),
          };
          for (const [name, text] of Object.entries(files)) {
            await Deno.writeTextFile(`${stubs}/${name}`, `${text}\n`, { mode: 0o755 });
          }
          const r = layer.root;
          const mirrorBoot = async (mirror: string, daemonJson?: string) => {
            if (daemonJson !== undefined) {
              await Deno.writeTextFile(`${stubs}/daemon.json`, daemonJson);
            }
            const m = await boot({
              shell: "/bin/sh",
              timeout: 0,
              docker: "dind",
              env: { DEVPOD_REGISTRY_MIRROR: mirror, DEVPOD_PROC_NET_ROUTE: "/run/test-route" },
              before: [
                `for f in dockerd docker iptables; do cp '${stubs}/'$f '${r}/usr/local/bin/'; done`,
                `cp '${stubs}/route' '${r}/run/test-route'`,
                `rm -f '${r}/run/up' '${r}/run/iptables.calls' '${r}/etc/docker/daemon.json'`,
                daemonJson === undefined
                  ? ":"
                  : `mkdir -p '${r}/etc/docker' && cp '${stubs}/daemon.json' '${r}/etc/docker/'`,
                `grep -q devpod-image-cache-t '${r}/etc/hosts' ||`,
                `  echo '10.99.0.1 devpod-image-cache-t' >>'${r}/etc/hosts'`,
              ].join("\n"),
            });
            await m.waitForLog(READY, 30_000);
            await stop(m);
            const read = (f: string) => Deno.readTextFile(`${layer.changes}/${f}`).catch(() => "");
            const dockerd = (await read("run/devpod/dockerd.log")).split("\n")[0];
            const iptables = (await read("run/iptables.calls")).trimEnd().split("\n").filter(
              Boolean,
            );
            return { log: m.log, dockerd, iptables };
          };
          const mirror = "http://devpod-image-cache-t:5000";
          const firewalled = new RegExp(
            `firewall: on eth1 \\(devpod-image-cache-t 10\\.99\\.0\\.1\\) only tcp port ${port} accepts`,
          );

          // http: plain HTTP allowed for that address only; rules added before dockerd starts.
          const http = await mirrorBoot(mirror);
          assert.doesNotMatch(http.log, /warning/);
          assert.equal(
            http.dockerd,
            `dockerd-args: [--registry-mirror] [${mirror}] [--insecure-registry] [devpod-image-cache-t:5000]`,
          );
          const lines = http.log.split("\n");
          const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
          const order = [
            at(firewalled),
            at(
              /docker: registry mirror http:\/\/devpod-image-cache-t:5000 \(plain HTTP allowed for devpod-image-cache-t:5000\)$/,
            ),
            at(/docker: ready in/),
          ];
          assert.ok(order[0] >= 0 && order[0] < order[1] && order[1] < order[2], http.log);
          assert.deepEqual(http.iptables, [
            `-t mangle -C PREROUTING -i eth1 -p tcp --dport ${port} -j ACCEPT`,
            `-t mangle -I PREROUTING 1 -i eth1 -p tcp --dport ${port} -j ACCEPT`,
            "-t mangle -C PREROUTING -i eth1 -m conntrack --ctstate NEW -j DROP",
            "-t mangle -A PREROUTING -i eth1 -m conntrack --ctstate NEW -j DROP",
          ]);

          // https: no insecure-registry.
          const https = await mirrorBoot("https://devpod-image-cache-t/");
          assert.equal(
            https.dockerd,
            "dockerd-args: [--registry-mirror] [https://devpod-image-cache-t/]",
          );
          assert.match(https.log, /docker: registry mirror https:\/\/devpod-image-cache-t\/\n/);

          // daemon.json sets registry-mirrors: a flag too would make dockerd refuse to start.
          const own = await mirrorBoot(
            mirror,
            '{\n  "registry-mirrors": ["https://mirror.gcr.io"]\n}\n',
          );
          assert.equal(own.dockerd, "dockerd-args:");
          assert.match(
            own.log,
            /docker: \/etc\/docker\/daemon\.json sets registry-mirrors; not adding http:\/\/devpod-image-cache-t:5000\n/,
          );
          assert.match(own.log, firewalled, "the machine is on the cache's network all the same");

          // daemon.json sets insecure-registries: the mirror flag only.
          const insecure = await mirrorBoot(mirror, '{"insecure-registries": ["10.0.0.0/8"]}\n');
          assert.equal(insecure.dockerd, `dockerd-args: [--registry-mirror] [${mirror}]`);
          assert.match(
            insecure.log,
            /registry mirror \S+ \(insecure-registries from \/etc\/docker\/daemon\.json\)/,
          );

          // Malformed: a warning, no flag, no rule; the machine boots as without a cache.
          const bad = await mirrorBoot(`${mirror}/v2/`);
          assert.match(
            bad.log,
            /warning: DEVPOD_REGISTRY_MIRROR must be http\(s\):\/\/host\[:port\], got 'http:\/\/devpod-image-cache-t:5000\/v2\/'; pulling without a mirror/,
          );
          assert.equal(bad.dockerd, "dockerd-args:");
          assert.deepEqual(bad.iptables, []);
          assert.doesNotMatch(bad.log, /firewall|registry mirror http/);
        },
      );

      await t.step(
        "an image whose uid 1000 is another user (ubuntu): renamed to devpod",
        async () => {
          // Turn the root fs into what ubuntu images look like: uid 1000 is `ubuntu`.
          const r = `chroot '${layer.root}'`;
          const m = await boot({
            shell: "/bin/sh",
            timeout: 0,
            before: `${r} userdel devpod && ${r} useradd -u 1000 -U -m -s /bin/bash ubuntu`,
          });
          await m.waitForLog(READY, 30_000);
          assert.match(m.log, /renaming 'ubuntu' \(uid 1000\) to devpod/);
          const out = await ssh("id -u; id -un; id -gn; echo $HOME; sudo -n true && echo sudo-ok");
          assert.equal(out.code, 0, `${out.stderr}\n${m.log}`);
          assert.equal(out.stdout, "1000\ndevpod\ndevpod\n/home/devpod\nsudo-ok\n");
          await stop(m);
        },
      );
    } finally {
      for (const m of machines) await m.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
