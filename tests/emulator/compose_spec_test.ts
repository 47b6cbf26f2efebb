/** Pure tests: dotenv parsing, compose interpolation, machine extraction, the validator. */
import assert from "node:assert/strict";
import { renderDotenv } from "./compose_files.ts";
import { interpolate, machineSpec, parseDotenv, projectSpec } from "./compose_spec.ts";
import { cacheCompose, machineCompose } from "./test_support.ts";
import { validate } from "./schema.ts";
import { operations, queryInput } from "./openapi.ts";

Deno.test("parseDotenv: quotes, export, comments, escapes", () => {
  assert.deepEqual(
    parseDotenv('A=1\n# c\nexport B="x y"\nC=\'$lit\'\nD=plain # note\nE="l1\\nl2"\n\nbad line'),
    { A: "1", B: "x y", C: "$lit", D: "plain", E: "l1\nl2" },
  );
  assert.deepEqual(parseDotenv(null), {});
});

Deno.test("interpolate: docker compose rules", () => {
  const vars = { A: "a", EMPTY: "" };
  const missing: string[] = [];
  const f = (s: string) => interpolate(s, vars, (n) => missing.push(n));
  assert.equal(f("$A ${A} $$A $$$A"), "a a $A $a");
  assert.equal(f("${EMPTY:-d} ${EMPTY-d} ${NOPE-d} ${A:+set} ${NOPE:+set}"), "d  d set ");
  assert.equal(f("${NOPE:-${A}x}"), "ax");
  assert.equal(f('"$@" $1 $? cost: 5$'), '"$@" $1 $? cost: 5$', "non-names stay literal");
  assert.equal(f("${MISSING}"), "");
  assert.deepEqual(missing, ["MISSING"]);
  assert.throws(() => f("${1}"), /Invalid template/);
  assert.throws(() => f("${A"), /Invalid template/);
  assert.throws(() => f("${NOPE:?need it}"), /required variable NOPE is missing a value: need it/);
});

Deno.test("machineSpec: provider-shaped file, unquoted ports, env from dotenv", () => {
  const file = [
    "services:",
    "  machine:",
    "    image: debian:bookworm-slim",
    '    entrypoint: ["/bin/sh", "-c", "echo $$HOME ${GREETING}", "devpod-bootstrap"]',
    "    environment:",
    "      DEVPOD_HOST_KEY_B64: ${KEY}",
    "      PLAIN: 7",
    "    ports:",
    "      - 32201:22",
    "    volumes: [home:/home/devpod, /var/run/docker.sock:/var/run/docker.sock]",
    "    restart: on-failure",
    "volumes: {home: {}}",
  ].join("\n");
  const r = machineSpec(file, 'KEY="a2V5"\nGREETING=hello', "m-abc123");
  assert.ok(r.ok);
  assert.deepEqual(r.spec.entrypoint, ["/bin/sh", "-c", "echo $HOME hello", "devpod-bootstrap"]);
  assert.deepEqual(r.spec.environment, { DEVPOD_HOST_KEY_B64: "a2V5", PLAIN: "7" });
  assert.equal(r.spec.publishedPort, 32201);
  assert.deepEqual(r.spec.volumes, [{ source: "home", target: "/home/devpod" }]);
  assert.equal(r.spec.restart, "on-failure");
  assert.deepEqual(r.warnings, []);
});

Deno.test("machineSpec: docker-like errors", () => {
  const err = (file: string) => {
    const r = machineSpec(file, null, "x");
    assert.equal(r.ok, false);
    return r.ok ? "" : r.error;
  };
  assert.match(err("services: ["), /^yaml: /);
  assert.match(
    err("services:\n  machine:\n    image: a\n    volumes: [data:/d]\n    ports: ['1:22']"),
    /undefined volume data/,
  );
  assert.match(
    err("services:\n  machine:\n    image: a\n    command: ${1}\n    ports: ['1:22']"),
    /invalid interpolation format for services\.machine\.command/,
  );
  assert.match(err("services:\n  machine:\n    image: a"), /must publish container port 22/);
  const long = machineSpec(
    "services:\n  machine:\n    image: a\n    ports: [{target: 22, published: 2200}]",
    null,
    "x",
  );
  assert.ok(long.ok && long.spec.publishedPort === 2200);
});

Deno.test("projectSpec: the image cache — no machine, a network named by .env's APP_NAME", () => {
  const app = "devpod-image-cache-abc123";
  const r = projectSpec(cacheCompose(), renderDotenv(app, null), app);
  assert.ok(r.ok, r.ok ? "" : r.error);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.project.machine, null);
  assert.deepEqual(r.project.services, [{
    service: "registry",
    image: "registry:2.8.3",
    volumes: [{ source: "cache", target: "/var/lib/registry" }],
    networks: [app],
    restart: "unless-stopped",
    labels: { "dev.devpod.image-cache": "true" },
  }]);
  assert.deepEqual(r.project.networks, [{ key: "cache", name: app, external: false }]);
  assert.deepEqual(r.project.volumes, ["cache"]);
  const m = machineSpec(cacheCompose(), null, app);
  assert.ok(!m.ok && /no such service: machine/.test(m.error));
});

Deno.test("machineSpec: several networks, external ones; ports, cpus, volumes as before", () => {
  const file = machineCompose({
    port: 32201,
    authorizedKey: "ssh-ed25519 AAAA devpod",
    externalNetworks: ["devpod-image-cache-abc123"],
  }).replace("    privileged: true", "    privileged: true\n    cpus: '1.5'") +
    "  dokploy-network: { external: true }\n"; // declared, unused: never looked up
  const r = projectSpec(file, null, "m-1");
  assert.ok(r.ok, r.ok ? "" : r.error);
  const spec = r.project.machine!;
  assert.deepEqual(spec.networks, ["m-1_machine", "devpod-image-cache-abc123"]);
  assert.deepEqual(r.project.networks, [
    { key: "machine", name: "m-1_machine", external: false },
    { key: "devpod-image-cache-abc123", name: "devpod-image-cache-abc123", external: true },
  ]);
  assert.equal(spec.publishedPort, 32201);
  assert.equal(spec.cpus, 1.5);
  assert.equal(spec.privileged, true);
  assert.deepEqual(spec.volumes, [
    { source: "home", target: "/home/devpod" },
    { source: "docker", target: "/var/lib/docker" },
  ]);
  assert.deepEqual(machineSpec(file, null, "m-1"), { ok: true, spec, warnings: r.warnings });

  // No networks: the project's default one. Legacy `external: {name}` and a map form.
  const plain = machineSpec(machineCompose({ port: 2200, authorizedKey: "k" }), null, "m-2");
  assert.ok(plain.ok && plain.spec.networks.join() === "m-2_default");
  const legacy = projectSpec(
    [
      "services:",
      "  machine:",
      "    image: a",
      "    ports: ['2201:22']",
      "    networks: { shared: { aliases: [x] }, own: null }",
      "networks:",
      "  shared: { external: { name: real-shared } }",
      "  own: { name: custom-own }",
    ].join("\n"),
    null,
    "m-3",
  );
  assert.ok(legacy.ok);
  assert.deepEqual(legacy.project.machine!.networks, ["real-shared", "custom-own"]);
  assert.deepEqual(legacy.project.networks.map((n) => [n.name, n.external]), [
    ["real-shared", true],
    ["custom-own", false],
  ]);
});

Deno.test("projectSpec: compose's errors for services and networks", () => {
  const err = (file: string) => {
    const r = projectSpec(file, null, "x");
    assert.equal(r.ok, false);
    return r.ok ? "" : r.error;
  };
  assert.equal(err("services: {}"), "no service selected");
  assert.equal(err("name: x"), "no service selected");
  assert.equal(err("services: [a]"), "services must be a mapping");
  assert.equal(
    err("services:\n  registry:\n    image: r\n    networks: [cache]"),
    'service "registry" refers to undefined network cache: invalid compose project',
  );
  assert.equal(
    err("services:\n  registry:\n    image: r\n    volumes: [cache:/var/lib/registry]"),
    'service "registry" refers to undefined volume cache: invalid compose project',
  );
  assert.match(err("services:\n  registry:\n    environment: {}"), /neither an image/);
  assert.match(
    err("services:\n  registry:\n    image: r\n    ports: ['5000:5000']"),
    /^emulator: service "registry" publishes ports/,
  );
});

Deno.test("validator: zod-like issues for unions, enums, nullable, records", () => {
  const schema = {
    type: "object",
    properties: {
      kind: { type: "string", enum: ["a", "b"] },
      n: { anyOf: [{ type: "string" }, { type: "null" }] },
      either: { anyOf: [{ type: "string" }, { type: "number" }] },
      list: { type: "array", items: { type: "integer", minimum: 1 } },
      limit: { type: "number", default: 20 },
    },
    required: ["n"],
  };
  const bad = validate(schema, { kind: "c", either: true, list: [0, 1.5] });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.issues.map((i) => [i.code, i.path.join(".")]), [
    ["invalid_value", "kind"],
    ["invalid_type", "n"],
    ["invalid_union", "either"],
    ["too_small", "list.0"],
    ["invalid_type", "list.1"],
  ]);
  assert.equal(bad.issues[1].message, "Invalid input: expected nonoptional, received undefined");
  const good = validate(schema, { n: null, extra: 1 });
  assert.deepEqual(
    good,
    { ok: true, value: { n: null, limit: 20 } },
    "defaults in, unknown keys out",
  );
});

Deno.test("openapi index: methods and query coercion", () => {
  const ops = operations();
  assert.equal(ops.get("compose.create")?.method, "POST");
  assert.equal(ops.get("compose.one")?.method, "GET");
  const search = ops.get("compose.search")!;
  const input = queryInput(search.schema, new URLSearchParams("limit=5&q=x&offset=abc"));
  assert.deepEqual(input, { limit: 5, q: "x", offset: NaN });
  const r = validate(search.schema!, input);
  assert.ok(!r.ok);
  assert.equal(r.issues[0].message, "Invalid input: expected number, received NaN");
  // Empty values are absent; a repeated key is an array; numbers as z.coerce reads them.
  assert.deepEqual(
    queryInput(search.schema, new URLSearchParams("limit=&q=&name=a&name=b&offset=%20")),
    { name: ["a", "b"], offset: 0 },
  );
  const list = ops.get("backup.listbackupfiles")!;
  assert.deepEqual(
    queryInput(list.schema, new URLSearchParams("destinationId=d&search=&serverId=")),
    { destinationId: "d" },
  );
  const withArrays = {
    type: "object",
    properties: {
      ids: { type: "array", items: { type: "number" } },
      on: { type: "boolean" },
    },
  };
  // One value of an array field is a one-item array; z.coerce.boolean() is Boolean(text).
  assert.deepEqual(queryInput(withArrays, new URLSearchParams("ids=7&on=false")), {
    ids: [7],
    on: true,
  });
});
