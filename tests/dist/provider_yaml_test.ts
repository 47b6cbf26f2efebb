import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { OPTION_GROUPS, OPTIONS } from "../../lib/options.ts";
import {
  checkProviderPolicy,
  EXEC_VERBS,
  parseProviderYaml,
  PLATFORMS,
  type ProviderBinary,
  providerConfig,
  renderProviderYaml,
  validateProviderConfig,
} from "../../scripts/provider_yaml.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

const ALL_DIGITS = "1".repeat(64);
const binaries: ProviderBinary[] = PLATFORMS.map(([os, arch], i) => ({
  os,
  arch,
  path: `https://example.com/${os}-${arch}`,
  // One checksum is all digits: unquoted it would parse as a number.
  checksum: i === 0 ? ALL_DIGITS : `${i}`.repeat(60) + "abcd",
}));
const input = { version: "v1.2.3", repo: "acme/devpod-provider-dokploy", binaries };

Deno.test("rendered provider.yaml round-trips to the same object", () => {
  const text = renderProviderYaml(input);
  assert.deepEqual(parseProviderYaml(text), providerConfig(input));
  assert.deepEqual(parse(text), providerConfig(input), "also under YAML 1.2");
});

Deno.test("rendered provider.yaml passes DevPod's rules and the project policy", () => {
  const parsed = parseProviderYaml(renderProviderYaml(input));
  assert.deepEqual(validateProviderConfig(parsed), []);
  assert.deepEqual(checkProviderPolicy(parsed, { requireChecksums: true }), []);
});

Deno.test("checksums are quoted in the text and strings after parsing", () => {
  const text = renderProviderYaml(input);
  assert.match(text, new RegExp(`checksum: "${ALL_DIGITS}"`));
  // Every checksum is quoted, not only the ones YAML would misread.
  assert.equal(text.match(/^\s+checksum: "[0-9a-f]{64}"$/gm)?.length, binaries.length);
  for (const b of (parseProviderYaml(text) as Obj).binaries.DOKPLOY_PROVIDER) {
    assert.equal(typeof b.checksum, "string");
  }
  assert.equal((parseProviderYaml(text) as Obj).binaries.DOKPLOY_PROVIDER[0].checksum, ALL_DIGITS);
});

Deno.test("string values that look like booleans, numbers or durations stay strings", () => {
  const parsed = parseProviderYaml(renderProviderYaml(input)) as Obj;
  assert.equal(parsed.options.KEEP_VOLUMES.default, "false");
  assert.equal(parsed.options.INACTIVITY_TIMEOUT.default, "30m");
  assert.equal(parsed.options.DOKPLOY_SERVER_ID.default, "");
  assert.equal(parsed.agent.local, "false");
  assert.equal(parsed.agent.docker.install, "false");
  // A YAML-1.1 boolean word or a zero must survive DevPod's parser as text.
  const tricky = renderProviderYaml({ ...input, machineImage: "on" });
  assert.equal((parseProviderYaml(tricky) as Obj).options.MACHINE_IMAGE.default, "on");
  const zero = renderProviderYaml({ ...input, version: "0.0.0" });
  assert.equal((parseProviderYaml(zero) as Obj).version, "0.0.0");
});

Deno.test("every option of the model is rendered with its fields", () => {
  const parsed = parseProviderYaml(renderProviderYaml(input)) as Obj;
  assert.deepEqual(Object.keys(parsed.options), OPTIONS.map((o) => o.name));
  for (const o of OPTIONS) {
    const r = parsed.options[o.name];
    assert.equal(r.description, o.description, o.name);
    assert.equal(r.displayName, o.displayName, o.name);
    assert.equal(r.type, o.type === "string" ? undefined : o.type, o.name);
    assert.equal(r.default, o.default, o.name);
    for (const flag of ["required", "password", "global", "local", "mutable", "hidden"] as const) {
      assert.equal(r[flag], o[flag] ? true : undefined, `${o.name}.${flag}`);
    }
    assert.deepEqual(r.enum, o.enum, o.name);
    assert.equal(r.validationPattern, o.validationPattern, o.name);
    assert.equal(r.validationMessage, o.validationMessage, o.name);
  }
  assert.deepEqual(
    parsed.optionGroups.map((g: Obj) => [g.name, g.defaultVisible]),
    OPTION_GROUPS.map((g) => [g.name, g.defaultVisible]),
  );
  assert.deepEqual(
    parsed.optionGroups.flatMap((g: Obj) => g.options).sort(),
    OPTIONS.map((o) => o.name).sort(),
  );
});

Deno.test("the fixed sections: metadata, agent and exec", () => {
  const parsed = parseProviderYaml(renderProviderYaml(input)) as Obj;
  assert.equal(parsed.name, "dokploy");
  assert.equal(parsed.version, "v1.2.3");
  assert.equal(parsed.home, "https://github.com/acme/devpod-provider-dokploy");
  assert.match(parsed.icon, /^https:\/\//);
  assert.deepEqual(parsed.agent, {
    local: "false",
    path: "${AGENT_PATH}",
    downloadURL: "${AGENT_URL}",
    docker: { install: "false" },
  });
  // No agent download host of ours: unset, each DevPod line uses its own releases
  // (loft-sh for v0.6.15, skevetter for the fork), or DEVPOD_AGENT_URL / AGENT_URL.
  assert.equal(parsed.options.AGENT_URL.default, "");
  assert.deepEqual(Object.keys(parsed.exec), [...EXEC_VERBS]);
  // The maintained fork's `devpod machine describe` runs it like the other verbs.
  assert.equal(parsed.exec.describe, '"${DOKPLOY_PROVIDER}" describe');
  for (const verb of EXEC_VERBS) assert.equal(parsed.exec[verb], `"\${DOKPLOY_PROVIDER}" ${verb}`);
});

Deno.test("machineImage replaces MACHINE_IMAGE's default and nothing else", () => {
  const image = "ghcr.io/acme/devpod-dokploy-machine@sha256:" + "a".repeat(64);
  const plain = providerConfig(input) as Obj;
  const pinned = providerConfig({ ...input, machineImage: image }) as Obj;
  assert.equal(pinned.options.MACHINE_IMAGE.default, image);
  assert.notEqual(plain.options.MACHINE_IMAGE.default, image);
  pinned.options.MACHINE_IMAGE.default = plain.options.MACHINE_IMAGE.default;
  assert.deepEqual(pinned, plain);
});

Deno.test("the rendering is stable under deno fmt (it is checked in CI)", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "provider.yaml");
  await Deno.writeTextFile(file, renderProviderYaml({ ...input, header: " header" }));
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--check", file],
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  await Deno.remove(dir, { recursive: true });
});

/** A valid config to break one rule at a time. */
const valid = (): Obj => structuredClone(providerConfig(input)) as Obj;

const broken: [string, (c: Obj) => void, RegExp][] = [
  ["bad name", (c) => (c.name = "Dokploy_Provider"), /name 'Dokploy_Provider'/],
  ["name too long", (c) => (c.name = "a".repeat(33)), /longer than 32/],
  ["missing name", (c) => delete c.name, /name is missing/],
  ["version not semver", (c) => (c.version = "1.2"), /not semver/],
  ["create without delete", (c) => delete c.exec.delete, /exec\.delete is required/],
  ["start without stop", (c) => delete c.exec.stop, /exec\.stop is required/],
  ["start without status", (c) => delete c.exec.status, /exec\.status is required/],
  ["no command", (c) => delete c.exec.command, /exec\.command is required/],
  [
    "lower-case option name",
    (c) => (c.options.lower_case = { description: "x" }),
    /option 'lower_case'/,
  ],
  ["unknown option type", (c) => (c.options.KEEP_VOLUMES.type = "bool"), /type 'bool'/],
  [
    "default with command",
    (c) => (c.options.DOKPLOY_PROJECT_NAME.command = "echo x"),
    /default and command/,
  ],
  ["global with cache", (c) => (c.options.DOKPLOY_API_TOKEN.cache = "5m"), /global and cache/],
  ["default not a string", (c) => (c.options.SSH_HOST.default = 0), /default must be a string/],
  [
    "lookahead pattern (not RE2)",
    (c) => (c.options.SSH_HOST.validationPattern = "^(?!x)"),
    /not RE2/,
  ],
  ["unknown top-level key", (c) => (c.exe = {}), /exe is not a known field/],
  [
    "option group with unknown option",
    (c) => c.optionGroups[0].options.push("NOPE"),
    /option 'NOPE'/,
  ],
  ["binary without arch", (c) => delete c.binaries.DOKPLOY_PROVIDER[0].arch, /arch is required/],
  ["binary bad os", (c) => (c.binaries.DOKPLOY_PROVIDER[0].os = "freebsd"), /os 'freebsd'/],
  ["binary without path", (c) => delete c.binaries.DOKPLOY_PROVIDER[0].path, /path is required/],
  [
    "numeric checksum",
    (c) => (c.binaries.DOKPLOY_PROVIDER[0].checksum = 111),
    /checksum must be a string/,
  ],
  ["archive without archivePath", (c) => {
    c.binaries.DOKPLOY_PROVIDER[0].path += ".tar.gz";
  }, /archivePath is required/],
  ["lower-case binary name", (c) => (c.binaries.tool = []), /binary name 'tool'/],
  ["agent.local not a StrBool", (c) => (c.agent.local = "no"), /agent\.local/],
  ["misspelt exec verb", (c) => (c.exec.describ = c.exec.describe), /exec\.describ is not/],
  ["describe not a string", (c) => (c.exec.describe = { run: "x" }), /exec\.describe must be/],
  // Devsy's parse.go and agent: its schema additions, proxy and daemon providers.
  ["Devsy: unknown docker runtime", (c) => (c.agent.docker.runtime = "crio"), /runtime 'crio'/],
  ["Devsy: misspelt docker key", (c) => (c.agent.docker.helperimage = "x"), /helperimage is not/],
  ["Devsy: proxy provider with an agent", (c) => {
    c.exec = { proxy: { status: "s", stop: "s", delete: "d", ssh: "s", up: "u" } };
  }, /agent config is not allowed for proxy providers/],
  ["Devsy: proxy provider with machine verbs", (c) => {
    delete c.agent;
    c.exec.proxy = { status: "s", stop: "s", delete: "d", ssh: "s", up: "u" };
  }, /exec\.create is not allowed in proxy providers/],
  ["Devsy: proxy provider without up", (c) => {
    delete c.agent;
    c.exec = { proxy: { status: "s", stop: "s", delete: "d", ssh: "s" } };
  }, /exec\.proxy\.up is required/],
  ["Devsy: daemon provider without start", (c) => {
    delete c.agent;
    c.exec = { daemon: { status: "s" } };
  }, /exec\.daemon\.start is required/],
  [
    "custom driver without its commands",
    (c) => (c.agent.driver = "custom"),
    /agent\.custom\.targetArchitecture is required/,
  ],
];

for (const [what, breakIt, expected] of broken) {
  Deno.test(`validateProviderConfig reports: ${what}`, () => {
    const config = valid();
    breakIt(config);
    const errors = validateProviderConfig(config);
    assert.ok(errors.some((e) => expected.test(e)), `${expected} not in ${JSON.stringify(errors)}`);
  });
}

Deno.test("Devsy's schema additions are accepted; DevPod's decoder ignores them", () => {
  const config = valid();
  config.agent.docker.helperImage = "busybox:1.36";
  for (const runtime of ["docker", "Podman ", "nerdctl", "${RUNTIME}"]) {
    config.agent.docker.runtime = runtime;
    assert.deepEqual(validateProviderConfig(config), [], runtime);
  }
  const daemon = { ...valid(), agent: undefined, exec: { daemon: { start: "d", status: "s" } } };
  delete daemon.agent;
  assert.deepEqual(validateProviderConfig(daemon), []);
});

Deno.test("several violations are all reported", () => {
  const config = valid();
  config.name = "BAD";
  delete config.exec.delete;
  config.options.lower = { description: "x" };
  delete config.binaries.DOKPLOY_PROVIDER[1].arch;
  assert.equal(validateProviderConfig(config).length, 4);
});

Deno.test("checkProviderPolicy: agent.local explicit, five platforms, checksums", () => {
  const noLocal = valid();
  delete noLocal.agent.local;
  assert.match(checkProviderPolicy(noLocal).join("\n"), /agent\.local/);
  const missingDarwin = valid();
  missingDarwin.binaries.DOKPLOY_PROVIDER = missingDarwin.binaries.DOKPLOY_PROVIDER.filter((
    b: Obj,
  ) => b.os !== "darwin");
  assert.equal(checkProviderPolicy(missingDarwin).length, 2);
  const noChecksum = valid();
  delete noChecksum.binaries.DOKPLOY_PROVIDER[4].checksum;
  assert.deepEqual(checkProviderPolicy(noChecksum), []);
  assert.match(
    checkProviderPolicy(noChecksum, { requireChecksums: true }).join(),
    /windows\/amd64 has no checksum/,
  );
});
