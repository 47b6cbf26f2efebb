/** The contributor tasks (the seed's Makefile targets), run as scripts against a fake devpod. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { OPTIONS } from "../../lib/options.ts";
import { parseProviderYaml, validateProviderConfig } from "../../scripts/provider_yaml.ts";
import { planSetOptions } from "../../scripts/dev/configure.ts";
import { devProviderFiles, planCalls } from "../../scripts/dev/local_provider.ts";
import { maskSecret, renderEnvExample } from "../../scripts/dev/options_env.ts";
import { fakeDevpod, REPO, runScript } from "./_helpers.ts";

const posixOnly = Deno.build.os === "windows"; // the fake devpod is a shell script
const TOKEN = "dkp_live_5ecr3t-T0ken-value-9876";

async function envFile(text: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "env-" });
  await Deno.writeTextFile(join(dir, ".env"), text);
  return join(dir, ".env");
}

Deno.test({
  name: "configure: ONE set-options call with the known options, token never printed",
  ignore: posixOnly,
  fn: async () => {
    const fake = await fakeDevpod();
    const env = await envFile(
      [
        "# comment",
        "DOKPLOY_SERVER_URL=https://dokploy.example.com",
        `DOKPLOY_API_TOKEN=${TOKEN}`,
        "MACHINE_TYPE=medium",
        "NOT_AN_OPTION=1",
        'INACTIVITY_TIMEOUT="45m"',
      ].join("\n"),
    );
    const res = await runScript(
      "scripts/dev/configure.ts",
      ["--env-file", env, "--provider", "my-dokploy"],
      { env: fake.env },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await fake.calls(), [[
      "provider",
      "set-options",
      "my-dokploy",
      ...["-o", "DOKPLOY_SERVER_URL=https://dokploy.example.com"],
      ...["-o", `DOKPLOY_API_TOKEN=${TOKEN}`],
      ...["-o", "MACHINE_TYPE=medium"],
      ...["-o", "INACTIVITY_TIMEOUT=45m"],
    ]]);
    assert.match(res.stderr, /ignoring NOT_AN_OPTION/);
    assert.ok(!res.stdout.includes(TOKEN) && !res.stderr.includes(TOKEN), "token printed");
    assert.match(res.stdout, /DOKPLOY_API_TOKEN=\*\*\*\*9876/);
  },
});

Deno.test({
  name: "configure: provider defaults to dokploy-dev; invalid values stop before devpod",
  ignore: posixOnly,
  fn: async () => {
    const fake = await fakeDevpod();
    const ok = await runScript(
      "scripts/dev/configure.ts",
      ["--env-file", await envFile("MACHINE_TYPE=small\n")],
      { env: fake.env },
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await fake.calls(), [[
      "provider",
      "set-options",
      "dokploy-dev",
      "-o",
      "MACHINE_TYPE=small",
    ]]);

    const bad = await runScript(
      "scripts/dev/configure.ts",
      ["--env-file", await envFile("MACHINE_TYPE=huge\n")],
      { env: fake.env },
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /MACHINE_TYPE=huge is not one of small, medium, large/);
    assert.equal((await fake.calls()).length, 1, "devpod must not be called again");
  },
});

Deno.test("planSetOptions skips empty required options and keeps empty optional ones", () => {
  const plan = planSetOptions("p", { DOKPLOY_API_TOKEN: "", DOKPLOY_SERVER_ID: "" });
  assert.deepEqual(plan.args, ["provider", "set-options", "p", "-o", "DOKPLOY_SERVER_ID="]);
  assert.match(plan.warnings.join(), /skipping DOKPLOY_API_TOKEN/);
});

Deno.test("setup-env writes .env.example listing every option, and .env only once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "setup-env-" });
  const res = await runScript("scripts/dev/setup_env.ts", ["--dir", dir]);
  assert.equal(res.code, 0, res.stderr);
  const example = await Deno.readTextFile(join(dir, ".env.example"));
  for (const o of OPTIONS) {
    assert.match(example, new RegExp(`^(# )?${o.name}=`, "m"), o.name);
    assert.ok(example.includes(`# ${o.description}`), `${o.name} description`);
    if (o.default) assert.ok(example.includes(`# Default: ${o.default}`), `${o.name} default`);
  }
  // Required options are the only active lines, and they are empty: no token ships.
  const active = { ...parseEnv(example) };
  assert.deepEqual(active, { DOKPLOY_SERVER_URL: "", DOKPLOY_API_TOKEN: "" });
  assert.equal(await Deno.readTextFile(join(dir, ".env")), example);

  await Deno.writeTextFile(join(dir, ".env"), `DOKPLOY_API_TOKEN=${TOKEN}\n`);
  const again = await runScript("scripts/dev/setup_env.ts", ["--dir", dir]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await Deno.readTextFile(join(dir, ".env")), `DOKPLOY_API_TOKEN=${TOKEN}\n`);
  assert.match(again.stdout, /already exists/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the .env.example defaults parse back to the model's defaults", () => {
  const uncommented = renderEnvExample().replace(/^# ([A-Z0-9_]+=)/gm, "$1");
  const parsed = parseEnv(uncommented);
  for (const o of OPTIONS) assert.equal(parsed[o.name], o.default ?? "", o.name);
});

Deno.test("show-config prints effective options with the token masked", async () => {
  const env = await envFile(`DOKPLOY_API_TOKEN=${TOKEN}\nMACHINE_TYPE=large\n`);
  const res = await runScript("scripts/dev/show_config.ts", ["--env-file", env], {
    env: { PATH: "/nonexistent" },
  });
  assert.equal(res.code, 0, res.stderr);
  assert.ok(!res.stdout.includes(TOKEN));
  assert.match(res.stdout, /DOKPLOY_API_TOKEN\s+\*\*\*\*9876\s+\.env/);
  assert.match(res.stdout, /MACHINE_TYPE\s+large\s+\.env/);
  assert.match(res.stdout, /DOKPLOY_PROJECT_NAME\s+devpod-workspaces\s+default/);
});

Deno.test("maskSecret shows at most the last 4 characters, and none of short secrets", () => {
  assert.equal(maskSecret(TOKEN), "****9876");
  assert.equal(maskSecret("short-secret"), "****");
  assert.equal(maskSecret(""), "");
});

Deno.test("dev provider: wrapper runs this checkout, yaml is valid and named dokploy-dev", () => {
  const files = devProviderFiles({
    cacheDir: "/c/dev provider",
    repoRoot: "/r/it's here",
    denoPath: "/bin/deno",
    os: "linux",
  });
  assert.equal(files.wrapperPath, "/c/dev provider/devpod-provider-dokploy");
  assert.match(files.wrapperText, /^#!\/bin\/sh\n/);
  assert.ok(
    files.wrapperText.includes(
      `exec '/bin/deno' run --allow-all --quiet --config '/r/it'\\''s here/deno.json' ` +
        `'/r/it'\\''s here/mod.ts' "$@"`,
    ),
    files.wrapperText,
  );
  const parsed = parseProviderYaml(files.yamlText) as {
    name: string;
    binaries: { DOKPLOY_PROVIDER: { os: string; arch: string; path: string }[] };
  };
  assert.deepEqual(validateProviderConfig(parsed), []);
  assert.equal(parsed.name, "dokploy-dev");
  assert.deepEqual(parsed.binaries.DOKPLOY_PROVIDER, [
    { os: "linux", arch: "amd64", path: files.wrapperPath },
    { os: "linux", arch: "arm64", path: files.wrapperPath },
  ]);
  const win = devProviderFiles({
    cacheDir: "C:\\c",
    repoRoot: "C:\\r",
    denoPath: "d",
    os: "windows",
  });
  assert.ok(win.wrapperPath.endsWith(".cmd"));
  assert.match(win.wrapperText, /%\*\r\n$/);
});

Deno.test("planCalls: add when new, update when present, delete+add when forced", () => {
  const add = ["provider", "add", "/y", "--name", "dokploy-dev", "--use=false"];
  assert.deepEqual(planCalls("install", { installed: false, force: false }, "/y"), [add]);
  assert.deepEqual(planCalls("install", { installed: true, force: false }, "/y"), [
    ["provider", "update", "dokploy-dev", "/y"],
  ]);
  assert.deepEqual(planCalls("force-reinstall", { installed: true, force: true }, "/y"), [
    ["provider", "delete", "dokploy-dev", "--force"],
    add,
  ]);
  assert.deepEqual(planCalls("uninstall", { installed: false, force: false }, "/y"), []);
});

Deno.test({
  name: "install-local: writes the files and adds, or updates when already added",
  ignore: posixOnly,
  fn: async () => {
    const cache = await Deno.makeTempDir({ prefix: "dev-provider-" });
    const fresh = await fakeDevpod();
    const res = await runScript("scripts/dev/local_provider.ts", [
      "install",
      "--cache-dir",
      cache,
    ], { env: fresh.env });
    assert.equal(res.code, 0, res.stderr);
    const yaml = join(cache, "provider.yaml");
    assert.deepEqual(await fresh.calls(), [
      ["provider", "list", "--output", "json"],
      ["provider", "add", yaml, "--name", "dokploy-dev", "--use=false"],
    ]);
    const wrapper = join(cache, "devpod-provider-dokploy");
    assert.ok(((await Deno.stat(wrapper)).mode ?? 0) & 0o100, "wrapper is executable");
    assert.ok((await Deno.readTextFile(wrapper)).includes(join(REPO, "mod.ts")));

    const existing = await fakeDevpod({ providers: { "dokploy-dev": {} } });
    const again = await runScript("scripts/dev/local_provider.ts", [
      "reinstall",
      "--cache-dir",
      cache,
    ], { env: existing.env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await existing.calls())[1], ["provider", "update", "dokploy-dev", yaml]);
    await Deno.remove(cache, { recursive: true });
  },
});

Deno.test({
  name: "force-reinstall refuses while workspaces use dokploy-dev, unless --force",
  ignore: posixOnly,
  fn: async () => {
    const cache = await Deno.makeTempDir({ prefix: "dev-provider-" });
    const opts = {
      providers: { "dokploy-dev": {} },
      workspaces: [{ id: "ws1", provider: { name: "dokploy-dev" } }, {
        id: "other",
        provider: { name: "docker" },
      }],
    };
    const fake = await fakeDevpod(opts);
    const args = ["force-reinstall", "--cache-dir", cache];
    const refused = await runScript("scripts/dev/local_provider.ts", args, { env: fake.env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing: workspaces still use dokploy-dev: ws1\./);
    assert.ok(!(await fake.calls()).some((c) => c[1] === "delete" || c[1] === "add"));

    const forced = await fakeDevpod(opts);
    const res = await runScript("scripts/dev/local_provider.ts", [...args, "--force"], {
      env: forced.env,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual((await forced.calls()).slice(-2).map((c) => c.slice(0, 3)), [
      ["provider", "delete", "dokploy-dev"],
      ["provider", "add", join(cache, "provider.yaml")],
    ]);
    await Deno.remove(cache, { recursive: true });
  },
});

Deno.test("without devpod on PATH, install-local prints the command to run", async () => {
  const cache = await Deno.makeTempDir({ prefix: "dev-provider-" });
  const res = await runScript("scripts/dev/local_provider.ts", ["install", "--cache-dir", cache], {
    env: { PATH: "/nonexistent" },
  });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /devpod is not on PATH/);
  assert.ok(
    res.stdout.includes(`devpod provider add ${join(cache, "provider.yaml")} --name dokploy-dev`),
  );
  await Deno.remove(cache, { recursive: true });
});
