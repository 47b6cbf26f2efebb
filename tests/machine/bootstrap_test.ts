/**
 * Runs machine/bootstrap.sh for real in a minimal Debian bookworm root fs (chroot), as
 * PID 1 of its own PID namespace, the way a container runs it: the first boot installs
 * openssh-server and sudo with apt (the "any image" fallback path), later boots install
 * and change nothing; then DevPod's view: ssh as `devpod` with the pinned host key,
 * no root or password login, docker stop, and the idle watchdog.
 */
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
        "DEVPOD_DISABLE_TELEMETRY=true: every session sees it (sshd SetEnv), and not otherwise",
        async () => {
          const telemetry = () => ssh("printenv DEVPOD_DISABLE_TELEMETRY || echo unset");
          const on = await boot({
            shell: "/bin/sh",
            timeout: 0,
            env: { DEVPOD_DISABLE_TELEMETRY: "true" },
          });
          await on.waitForLog(READY, 30_000);
          assert.match(on.log, /SetEnv DEVPOD_DISABLE_TELEMETRY=true, config ok/);
          const seen = await telemetry();
          assert.equal(seen.code, 0, `${seen.stderr}\n${on.log}`);
          assert.equal(seen.stdout, "true\n");
          await stop(on);

          const off = await boot({ shell: "/bin/sh", timeout: 0 });
          await off.waitForLog(READY, 30_000);
          assert.equal((await telemetry()).stdout, "unset\n", "the config is rewritten without it");
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
