/**
 * The compose v1 adapter's pure parts for what the image cache (issue 11) adds: the copy
 * of the cache's file, machines joining an external network, and v1's error in v2's words.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { BRIDGE_NAME_OPTION, guardedBridgeName } from "../engine/guard.ts";
import { toTestFile, v2Wording } from "./machine/compose_command.ts";
import { cacheCompose, machineCompose } from "./test_support.ts";

Deno.test("compose v1 adapter: the cache's file reads the same under YAML 1.1", () => {
  const copy = YAML.parse(toTestFile(cacheCompose(), "devpod-image-cache-abc123"), {
    version: "1.1",
  });
  const registry = copy.services.registry;
  assert.equal(registry.container_name, "devpod-image-cache-abc123-registry-1", "v2's name");
  assert.equal(registry.ports, undefined, "no port appears");
  assert.equal(registry.environment.REGISTRY_STORAGE_DELETE_ENABLED, "true");
  assert.equal(registry.environment.REGISTRY_HTTP_ADDR, "0.0.0.0:5000", "not base 60");
  assert.deepEqual(registry.networks, { cache: { aliases: ["${APP_NAME}"] } });
  assert.deepEqual(registry.volumes, ["cache:/var/lib/registry"]);
  // compose (v1 too) fills these from the .env beside the copy.
  assert.deepEqual(copy.networks, {
    cache: {
      name: "${APP_NAME}",
      driver_opts: {
        [BRIDGE_NAME_OPTION]: guardedBridgeName("devpod-image-cache-abc123", "cache"),
      },
    },
  });
  assert.deepEqual(copy.volumes, { cache: {} });
});

Deno.test("compose v1 adapter: a machine's external networks stay external", () => {
  const file = machineCompose({
    port: 32453,
    authorizedKey: "k",
    externalNetworks: ["devpod-image-cache-abc123"],
  });
  const copy = YAML.parse(toTestFile(file, "m-1"), { version: "1.1" });
  assert.deepEqual(copy.services.machine.networks, ["machine", "devpod-image-cache-abc123"]);
  assert.deepEqual(copy.networks, {
    machine: { driver_opts: { [BRIDGE_NAME_OPTION]: guardedBridgeName("m-1", "machine") } },
    "devpod-image-cache-abc123": { external: true },
  });
  assert.deepEqual(copy.services.machine.ports, ["127.0.0.1:32453:22"]);
});

Deno.test("compose v1 adapter: a missing external network in v2's words", () => {
  const v1 = 'Creating network "m-1_machine" with the default driver\n' +
    "Network c-1 declared as external, but could not be found. Please create the network " +
    "manually using `docker network create c-1` and try again.\n";
  assert.equal(
    v2Wording(v1),
    'Creating network "m-1_machine" with the default driver\n' +
      "network c-1 declared as external, but could not be found\n",
  );
  assert.equal(
    v2Wording(
      "ERROR: Network c-2 declared as external, but could not be found. Please create the " +
        "network manually using `docker network create c-2` and try again.",
    ),
    "network c-2 declared as external, but could not be found",
  );
  const other = "ERROR: for m-1-machine-1  Cannot start service machine: network abc not found\n";
  assert.equal(v2Wording(other), other);
});

Deno.test("compose adapter: published ports bind to the server's address", () => {
  const file = machineCompose({ port: 32453, authorizedKey: "k" });
  const copy = YAML.parse(toTestFile(file, "m-1", "127.0.0.3"), { version: "1.1" });
  assert.deepEqual(copy.services.machine.ports, ["127.0.0.3:32453:22"]);
});

Deno.test("compose adapter: every network compose creates gets a bridge the guard knows", () => {
  const file = YAML.stringify({
    services: {
      joins: { image: "i", networks: ["own", "ext"] },
      lonely: { image: "i" },
      host: { image: "i", network_mode: "host" },
    },
    networks: {
      own: null,
      ext: { external: true },
      overlay: { driver: "overlay" },
      named: { driver_opts: { [BRIDGE_NAME_OPTION]: "kept0" } },
    },
  });
  const networks = YAML.parse(toTestFile(file, "p-1"), { version: "1.1" }).networks;
  const bridge = (key: string) => networks[key].driver_opts?.[BRIDGE_NAME_OPTION];
  assert.equal(bridge("own"), guardedBridgeName("p-1", "own"));
  assert.equal(bridge("default"), guardedBridgeName("p-1", "default"), "`lonely` joins it");
  assert.equal(bridge("ext"), undefined, "an external network is made elsewhere");
  assert.equal(bridge("overlay"), undefined, "not a bridge");
  assert.equal(bridge("named"), "kept0");
  // Linux interface names: 15 bytes at most; distinct per project and network.
  const names = ["own", "default"].flatMap((n) =>
    ["p-1", "p-2"].map((p) => guardedBridgeName(p, n))
  );
  assert.equal(new Set(names).size, 4);
  for (const name of names) assert.match(name, /^dpdt[0-9a-f]{11}$/);

  const joined = YAML.stringify({ services: { m: { image: "i", networks: ["ext"] } } });
  assert.equal(
    YAML.parse(toTestFile(joined, "p-1"), { version: "1.1" }).networks,
    undefined,
    "no default network when every service names its networks",
  );
});
