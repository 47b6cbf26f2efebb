/**
 * `preview` against the emulator (host runtime: no engine, so nothing is served here;
 * tests/engine/preview_test.ts serves real traffic): what the verb writes into Dokploy,
 * what `start` keeps, what list and doctor show, and every refusal in one line.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { runProvider, startWorld, type World } from "./harness.ts";

const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };

function human(w: World, args: string[], extra: Record<string, string> = {}) {
  return runProvider(args, w.env("unused", extra));
}

async function composeOf(w: World, id: string) {
  const snap = await w.emu.snapshot();
  const c = snap.composes.find((x) => x.name.includes(id))!;
  return {
    c,
    file: snap.composeFiles[c.composeId],
    domains: snap.domains.filter((d) => d.composeId === c.composeId),
  };
}

Deno.test({
  name: "e2e: preview add, list, start keeps it, doctor, rm, delete — Dokploy's rows and file",
  ...NO_SANITIZE,
  async fn() {
    const w = await startWorld({ options: { PREVIEW_DOMAIN: "*.dev.example.com" } });
    try {
      assert.equal((await w.run("create", "pv-a")).code, 0);
      const add = await human(w, ["preview", "pv-a", "3000"]);
      assert.equal(add.code, 0, add.stderr);
      assert.match(
        add.stdoutText,
        /port 3000 of machine pv-a is at https:\/\/pv-a-3000\.dev\.example\.com\n/,
      );
      const password = /password: (\S+)/.exec(add.stdoutText)![1];
      const open = await human(w, ["preview", "pv-a", "8080", "--auth", "none"]);
      assert.equal(open.code, 0, open.stderr);

      let { file, domains, c } = await composeOf(w, "pv-a");
      assert.ok(!file.includes(password), "only the hash is stored");
      const forwarder = YAML.parse(file).services.preview;
      assert.equal(forwarder.environment.DEVPOD_PREVIEW_PORTS, "3000 8080");
      assert.deepEqual(
        domains.map((d) => [d.host, d.port, d.serviceName]).sort(),
        [["pv-a-3000.dev.example.com", 3000, "preview"], [
          "pv-a-8080.dev.example.com",
          8080,
          "preview",
        ]],
      );

      const again = await human(w, ["preview", "pv-a", "3000"]);
      assert.equal(again.code, 1);
      assert.match(
        again.stderr,
        /port 3000 of machine pv-a is previewed already at https:\/\/pv-a-3000\.dev\.example\.com; remove it first: preview rm pv-a 3000\n$/,
      );

      const list = await human(w, ["preview", "list", "--json"]);
      const rows = JSON.parse(list.stdoutText).previews;
      assert.deepEqual(
        rows.map((
          r: { port: number; auth: string; problem: string | null },
        ) => [r.port, r.auth, r.problem]),
        [
          [3000, "basic", null],
          [8080, "none", null],
        ],
      );

      // stop/start keep the previews: start finds no spec change and starts as it was.
      assert.equal((await w.run("stop", "pv-a")).code, 0);
      const stopped = await human(w, ["preview", "pv-a", "9000"]);
      assert.equal(stopped.code, 1);
      assert.match(
        stopped.stderr,
        /machine pv-a is not running \(Stopped\); start it \(devpod up <workspace>\) and run preview again\n$/,
      );
      const start = await w.run("start", "pv-a");
      assert.equal(start.code, 0, start.stderr);
      assert.doesNotMatch(
        start.stderr,
        /spec changed/,
        "the previews are part of the expected spec",
      );
      ({ file } = await composeOf(w, "pv-a"));
      assert.equal(YAML.parse(file).services.preview.environment.DEVPOD_PREVIEW_PORTS, "3000 8080");

      // A line per preview, its path probed over SSH from inside the machine: the host
      // stand-in records the forwarder's container but runs no forwarder, so the probe
      // finds none on the machine's network (the real engine test sees it pass).
      const doctor = await human(w, ["doctor"]);
      for (const port of [3000, 8080]) {
        assert.match(
          doctor.stdoutText,
          new RegExp(
            `✘ preview pv-a:${port} +https://pv-a-${port}\\.\\S+: no forwarder on the machine's network \\(preview\\.\\S+_machine has no address\\); devpod stop, then devpod up`,
          ),
          doctor.stdoutText,
        );
      }
      const table = await human(w, ["list"]);
      assert.match(table.stdoutText, /PREVIEWS/);
      assert.match(table.stdoutText, /pv-a .* 3000, 8080\n/);

      const rm = await human(w, ["preview", "rm", "pv-a", "3000"]);
      assert.equal(rm.code, 0, rm.stderr);
      ({ file, domains } = await composeOf(w, "pv-a"));
      assert.equal(YAML.parse(file).services.preview.environment.DEVPOD_PREVIEW_PORTS, "8080");
      assert.deepEqual(domains.map((d) => d.port), [8080]);
      const none = await human(w, ["preview", "rm", "pv-a", "3000"]);
      assert.equal(none.code, 1);
      assert.match(
        none.stderr,
        /machine pv-a has no preview on port 3000 \(preview list shows them\)\n$/,
      );
      const last = await human(w, ["preview", "rm", "pv-a", "8080"]);
      assert.equal(last.code, 0, last.stderr);
      ({ file, domains } = await composeOf(w, "pv-a"));
      assert.equal(YAML.parse(file).services.preview, undefined, "no previews: no forwarder");
      assert.equal(domains.length, 0);

      assert.equal((await human(w, ["preview", "pv-a", "3000"])).code, 0);
      const composeId = c.composeId;
      assert.equal((await w.run("delete", "pv-a")).code, 0);
      const snap = await w.emu.snapshot();
      assert.equal(
        snap.domains.filter((d) => d.composeId === composeId).length,
        0,
        "delete took its domains",
      );
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: preview refusals are one line naming the fix",
  ...NO_SANITIZE,
  async fn() {
    const w = await startWorld();
    try {
      assert.equal((await w.run("create", "pv-net", { env: { DOKPLOY_NETWORK: "true" } })).code, 0);
      assert.equal((await w.run("create", "pv-ok")).code, 0);
      const cases: [string[], RegExp][] = [
        [
          ["preview", "pv-net", "3000"],
          /machine pv-net is on dokploy-network \(DOKPLOY_NETWORK=true\).*previews need DOKPLOY_NETWORK=false\n$/,
        ],
        [["preview", "nope", "3000"], /machine nope does not exist in Dokploy/],
        [["preview", "pv-net", "99999"], /port "99999" is not a TCP port/],
        [
          ["preview", "pv-net", "3000", "--auth", "digest"],
          /--auth "digest" must be basic \(the default\) or none/,
        ],
        [
          ["preview", "pv-ok", "3000", "--host", "bad host"],
          /--host "bad host" is not a host name/,
        ],
        [["preview"], /preview takes preview <machine> <port>/],
      ];
      for (const [args, expected] of cases) {
        const r = await human(w, args);
        assert.notEqual(r.code, 0, args.join(" "));
        assert.match(r.stderr, expected, args.join(" "));
        assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/, "no stack trace");
      }
      const bad = await human(w, ["list"], { PREVIEW_DOMAIN: "not a domain" });
      assert.match(
        bad.stderr,
        /PREVIEW_DOMAIN "not a domain" must be a wildcard domain such as \*\.dev\.example\.com/,
      );
    } finally {
      await w.close();
    }
  },
});
