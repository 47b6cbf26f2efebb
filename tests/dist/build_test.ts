import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  binaryName,
  checksumLine,
  parseBuildArgs,
  releaseBinaries,
  releaseUrl,
  renderReleaseYaml,
  sha256Hex,
  TARGETS,
} from "../../scripts/build.ts";
import { parseProviderYaml, validateProviderConfig } from "../../scripts/provider_yaml.ts";
import { runScript } from "./_helpers.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

const NAMES = [
  "devpod-provider-dokploy-linux-amd64",
  "devpod-provider-dokploy-linux-arm64",
  "devpod-provider-dokploy-darwin-amd64",
  "devpod-provider-dokploy-darwin-arm64",
  "devpod-provider-dokploy-windows-amd64.exe",
];

Deno.test("targets: five platforms, DevPod's os/arch names, deno's target triples", () => {
  assert.deepEqual(TARGETS.map((t) => t.fileName), NAMES);
  assert.deepEqual(TARGETS.map((t) => t.denoTarget), [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
  ]);
  assert.deepEqual(TARGETS.map((t) => `${t.os}/${t.arch}`), [
    "linux/amd64",
    "linux/arm64",
    "darwin/amd64",
    "darwin/arm64",
    "windows/amd64",
  ]);
  assert.equal(binaryName("windows", "amd64"), NAMES[4]);
});

Deno.test("sha256Hex matches node:crypto and checksumLine is sha256sum's format", async () => {
  const data = new TextEncoder().encode("hello provider");
  const expected = createHash("sha256").update(data).digest("hex");
  assert.equal(await sha256Hex(data), expected);
  assert.equal(checksumLine(expected, "f"), `${expected}  f\n`);
});

Deno.test("release URLs point at the tag's assets", () => {
  assert.equal(
    releaseUrl("acme/p", "v1.0.0", NAMES[0]),
    `https://github.com/acme/p/releases/download/v1.0.0/${NAMES[0]}`,
  );
  const bins = releaseBinaries("acme/p", "v1.0.0", { [NAMES[1]]: "ab".repeat(32) });
  assert.equal(bins.length, 5);
  assert.equal(bins[0].checksum, undefined);
  assert.equal(bins[1].checksum, "ab".repeat(32));
});

Deno.test("renderReleaseYaml refuses a release without checksums", () => {
  assert.throws(
    () => renderReleaseYaml({ version: "v1.0.0", repo: "acme/p", checksums: {} }),
    /has no checksum/,
  );
});

Deno.test("parseBuildArgs checks version, repo and flags", () => {
  const ok = parseBuildArgs(["--version", "v1.2.3", "--repo", "acme/p"]);
  assert.deepEqual(ok, {
    version: "v1.2.3",
    repo: "acme/p",
    out: "dist",
    machineImage: undefined,
    skipCompile: false,
    binariesDir: undefined,
  });
  assert.throws(() => parseBuildArgs(["--version", "1.2", "--repo", "acme/p"]), /semver/);
  assert.throws(() => parseBuildArgs(["--version", "v1.2.3"]), /--repo/);
  assert.throws(() => parseBuildArgs(["--version", "v1.2.3", "--repo", "acme"]), /--repo/);
  assert.throws(
    () => parseBuildArgs(["--version", "v1.2.3", "--repo", "a/b", "--binaries-dir", "x"]),
    /--skip-compile/,
  );
});

async function fakeBinaries(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fake-bins-" });
  for (const name of NAMES) await Deno.writeTextFile(join(dir, name), `binary ${name}\n`);
  return dir;
}

Deno.test("build.ts --skip-compile: checksum files and a valid provider.yaml", async () => {
  const bins = await fakeBinaries();
  const out = await Deno.makeTempDir({ prefix: "dist-" });
  const image = "ghcr.io/acme/devpod-dokploy-machine@sha256:" + "c".repeat(64);
  const res = await runScript("scripts/build.ts", [
    ...["--version", "v9.8.7", "--repo", "acme/devpod-provider-dokploy"],
    ...["--out", out, "--skip-compile", "--binaries-dir", bins, "--machine-image", image],
  ]);
  assert.equal(res.code, 0, res.stderr);

  const hashes: Record<string, string> = {};
  for (const name of NAMES) {
    const bytes = await Deno.readFile(join(out, name));
    assert.deepEqual(bytes, await Deno.readFile(join(bins, name)), `${name} copied`);
    hashes[name] = createHash("sha256").update(bytes).digest("hex");
    assert.equal(
      await Deno.readTextFile(join(out, `${name}.sha256`)),
      `${hashes[name]}  ${name}\n`,
    );
  }

  const text = await Deno.readTextFile(join(out, "provider.yaml"));
  const parsed = parseProviderYaml(text) as Obj;
  assert.deepEqual(validateProviderConfig(parsed), []);
  assert.equal(parsed.version, "v9.8.7");
  assert.equal(parsed.options.MACHINE_IMAGE.default, image);
  const entries = parsed.binaries.DOKPLOY_PROVIDER as Obj[];
  assert.deepEqual(
    entries.map((b) => b.path),
    NAMES.map((n) =>
      `https://github.com/acme/devpod-provider-dokploy/releases/download/v9.8.7/${n}`
    ),
  );
  for (const [i, name] of NAMES.entries()) {
    assert.equal(typeof entries[i].checksum, "string");
    assert.equal(entries[i].checksum, hashes[name]);
    assert.ok(text.includes(`checksum: "${hashes[name]}"`), `${name} checksum quoted`);
  }
  await Deno.remove(bins, { recursive: true });
  await Deno.remove(out, { recursive: true });
});

Deno.test("build.ts fails loudly when a binary is missing or the version is bad", async () => {
  const bins = await fakeBinaries();
  await Deno.remove(join(bins, NAMES[3]));
  const out = await Deno.makeTempDir({ prefix: "dist-" });
  const common = ["--repo", "acme/p", "--out", out, "--skip-compile", "--binaries-dir", bins];
  const missing = await runScript("scripts/build.ts", ["--version", "v1.0.0", ...common]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`${NAMES[3]} not found`));
  await assert.rejects(Deno.stat(join(out, "provider.yaml")), Deno.errors.NotFound);

  const badVersion = await runScript("scripts/build.ts", ["--version", "latest", ...common]);
  assert.equal(badVersion.code, 1);
  assert.match(badVersion.stderr, /--version must be semver/);
  await Deno.remove(bins, { recursive: true });
  await Deno.remove(out, { recursive: true });
});
