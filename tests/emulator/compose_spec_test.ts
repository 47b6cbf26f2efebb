/** Pure tests: dotenv parsing, compose interpolation, machine extraction, the validator. */
import assert from "node:assert/strict";
import { interpolate, machineSpec, parseDotenv } from "./compose_spec.ts";
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
});
