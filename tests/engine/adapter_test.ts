/**
 * The pieces that put Dokploy's machines on this host's engine, without the engine:
 * capability detection, the runc wrapper (run for real against a stand-in runc), the
 * compose v1 copy, Dokploy's `docker ps` parse and the `.env` Dokploy writes.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { renderDotenv } from "../emulator/compose_files.ts";
import { parseDotenv } from "../emulator/compose_spec.ts";
import { parseInvocation, toTestFile } from "../emulator/machine/compose_command.ts";
import { parsePs } from "../emulator/machine/docker_runtime.ts";
import { missingCapabilities, runcWrapper } from "./engine.ts";

Deno.test("engine: capabilities missing from the bounding set are named", () => {
  // This VM's CapBnd: every capability up to 40 but CAP_SYS_RESOURCE (24).
  assert.deepEqual(missingCapabilities("CapBnd:\t000001fffeffffff\n", 40), ["CAP_SYS_RESOURCE"]);
  assert.deepEqual(missingCapabilities("CapBnd:\t000001ffffffffff\n", 40), []);
  // A kernel that knows fewer capabilities is not asked for the newer ones.
  assert.deepEqual(missingCapabilities("CapBnd:\t000000ffffffffff\n", 39), []);
  assert.deepEqual(
    missingCapabilities("CapBnd:\t000001fffeffdfff\n", 40),
    ["CAP_NET_RAW", "CAP_SYS_RESOURCE"],
  );
});

Deno.test("engine: the runc wrapper strips the capabilities, then runs the real runc", async () => {
  const dir = await Deno.makeTempDir({ prefix: "runc-wrapper-" });
  try {
    // A stand-in runc that reports its argv and the files the wrapper edited.
    await Deno.writeTextFile(
      `${dir}/real-runc`,
      `#!/bin/sh\necho "args: $*"\ncat "${dir}/bundle/config.json"\necho\ncat "${dir}/process.json"\n`,
      { mode: 0o755 },
    );
    await Deno.writeTextFile(
      `${dir}/wrapper`,
      runcWrapper(`${dir}/real-runc`, ["CAP_SYS_RESOURCE"]),
      {
        mode: 0o755,
      },
    );
    await Deno.mkdir(`${dir}/bundle`);
    const caps = '["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_KILL"]';
    const spec =
      `{"process":{"capabilities":{"bounding":${caps},"effective":["CAP_SYS_RESOURCE"]}}}`;
    await Deno.writeTextFile(`${dir}/bundle/config.json`, spec);
    await Deno.writeTextFile(`${dir}/process.json`, `{"capabilities":{"permitted":${caps}}}`);

    const create = await new Deno.Command(`${dir}/wrapper`, {
      args: ["--root", "/x", "create", "--bundle", `${dir}/bundle`, "c1"],
    }).output();
    const out = new TextDecoder().decode(create.stdout);
    assert.ok(create.success);
    assert.match(out, new RegExp(`args: --root /x create --bundle ${dir}/bundle c1`));
    const [config] = out.split("\n").slice(1);
    assert.deepEqual(JSON.parse(config).process.capabilities, {
      bounding: ["CAP_CHOWN", "CAP_KILL"],
      effective: [],
    });

    const exec = await new Deno.Command(`${dir}/wrapper`, {
      args: ["exec", "--process", `${dir}/process.json`, "c1"],
    }).output();
    const process = new TextDecoder().decode(exec.stdout).split("\n")[2];
    assert.deepEqual(JSON.parse(process).capabilities.permitted, ["CAP_CHOWN", "CAP_KILL"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compose v1 adapter: Dokploy's command lines are understood", () => {
  assert.deepEqual(
    parseInvocation(["-p", "m-1", "-f", "docker-compose.yml", "up", "-d", "--build"]),
    { project: "m-1", file: "docker-compose.yml", command: "up", flags: ["-d", "--build"] },
  );
  assert.deepEqual(parseInvocation(["-p", "m-1", "down", "--volumes"]), {
    project: "m-1",
    file: null,
    command: "down",
    flags: ["--volumes"],
  });
  assert.throws(() => parseInvocation(["up", "-d"]), /-p PROJECT is required/);
});

Deno.test("compose v1 adapter: the copy reads the same under YAML 1.1", () => {
  const v2 = [
    "services:",
    "  machine:",
    "    image: img",
    "    ports:",
    "      - 32453:22",
    "    environment:",
    "      FLAG: yes",
    '      KEY: "${KEY}"',
    "    entrypoint: [/bin/sh, -c, 'echo $$HOME']",
  ].join("\n");
  // The trap the copy avoids: YAML 1.1 reads 32453:22 as base 60, `yes` as true.
  const naive = YAML.parse(v2, { version: "1.1" }) as {
    services: { machine: { ports: unknown[] } };
  };
  assert.equal(naive.services.machine.ports[0], 32453 * 60 + 22);

  const v1 = YAML.parse(toTestFile(v2, "m-1"), { version: "1.1" }).services.machine;
  assert.deepEqual(v1.ports, ["127.0.0.1:32453:22"], "quoted, and published on loopback only");
  assert.equal(v1.environment.FLAG, "yes");
  assert.equal(v1.environment.KEY, "${KEY}");
  assert.deepEqual(v1.entrypoint, ["/bin/sh", "-c", "echo $$HOME"], "compose escapes kept");
  assert.equal(v1.container_name, "m-1-machine-1", "v2's container name");
  const ownNames = YAML.parse(toTestFile(v2, "m-1", "127.0.0.1", "v1"), { version: "1.1" });
  assert.equal(ownNames.services.machine.container_name, "m-1_machine_1", "v1's, when asked");
});

Deno.test("docker runtime: `docker ps` lines parsed as Dokploy parses them", () => {
  const text = "CONTAINER ID : 0123456789ab | Name: m-1-machine-1 | State: restarting | " +
    "Status: Restarting (1) 2 seconds ago\n";
  assert.deepEqual(parsePs(text), [{
    containerId: "0123456789ab",
    name: "m-1-machine-1",
    state: "restarting",
    status: "Restarting (1) 2 seconds ago",
  }]);
});

Deno.test("emulator: the .env Dokploy writes, and reads back the same values", () => {
  const env = 'DEVPOD_HOST_KEY_B64=QUJD+/=\nODD="a\\"b"\n';
  const text = renderDotenv("m-1", env);
  assert.equal(
    text,
    'APP_NAME="m-1"\nCOMPOSE_PROJECT_NAME="m-1"\nDEVPOD_HOST_KEY_B64="QUJD+/="\n' +
      'ODD="a\\"b"\nDOCKER_CONFIG="/root/.docker"\n',
  );
  assert.deepEqual(parseDotenv(renderDotenv("m-1", "P=c:\\dir $HOME\n")).P, "c:\\dir $HOME");
});
