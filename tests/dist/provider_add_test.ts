/**
 * `devsy provider add <owner>/<repo>[@tag]` and `devpod provider add …` against what the
 * release workflow publishes. The CLIs' GitHub resolvers are reproduced from their source
 * (Devsy pkg/provider/resolve.go `downloadProviderGithub`/`buildGithubURL`, versions_github.go;
 * DevPod pkg/workspace/provider.go, devpod-protocol.md §3.10), GitHub's releases by a store
 * that holds what the workflow uploads (its `files:` globs over build.ts's output) and
 * answers `releases/latest/download/…` with the newest release not marked pre-release.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { parse } from "yaml";
import { isPrerelease, RELEASE_NOTES, TARGETS } from "../../scripts/build.ts";
import { parseProviderYaml, validateProviderConfig } from "../../scripts/provider_yaml.ts";
import { WORKFLOWS } from "../../scripts/dev/validate.ts";
import { runScript } from "./_helpers.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

const REPO = "acme/devpod-provider-dokploy";

/** The URL a CLI line fetches for a GitHub source, or its error (as its resolver decides). */
function providerUrl(line: "devpod" | "devsy", source: string): string {
  let path = source.replace(/^github\.com\//, "");
  let release = "";
  const at = path.lastIndexOf("@");
  if (at !== -1) [path, release] = [path.slice(0, at), path.slice(at + 1)];
  const parts = path.replace(/\/$/, "").split("/");
  if (parts.length === 1) {
    path = line === "devsy"
      ? `devsy-org/devsy-provider-${path}`
      : `loft-sh/devpod-provider-${path}`;
  } else if (parts.length !== 2) throw new Error(`invalid github path format: ${source}`);
  return release === ""
    ? `https://github.com/${path}/releases/latest/download/provider.yaml`
    : `https://github.com/${path}/releases/download/${release}/provider.yaml`;
}

interface Release {
  tag: string;
  prerelease: boolean;
  assets: Map<string, Uint8Array>;
}

/** GitHub's releases of one repository, as the workflow leaves them. */
class ReleaseStore {
  releases: Release[] = [];

  /** `latest` is the newest release GitHub may call latest: not a pre-release (make_latest). */
  get(url: string): Uint8Array {
    const m = new RegExp(
      `^https://github\\.com/${REPO}/releases/(?:latest/download|download/([^/]+))/([^/]+)$`,
    )
      .exec(url);
    if (!m) throw new Error(`404 ${url}`);
    const release = m[1] === undefined
      ? this.releases.findLast((r) => !r.prerelease)
      : this.releases.find((r) => r.tag === m[1]);
    const asset = release?.assets.get(m[2]);
    if (!asset) throw new Error(`404 ${url}`);
    return asset;
  }

  /** Devsy's `provider versions`: no drafts, pre-releases only when asked, newest first. */
  versions(includePrerelease: boolean): string[] {
    return this.releases.filter((r) => includePrerelease || !r.prerelease).map((r) => r.tag)
      .reverse();
  }
}

/** The upload step's `with:` of the release workflow. */
async function uploadStep(): Promise<Obj> {
  const wf = parse(await Deno.readTextFile(WORKFLOWS[1])) as Obj;
  return wf.jobs.release.steps.find((s: Obj) => String(s.uses).startsWith("softprops/"))!.with;
}

/** Which of `dist`'s files a `files:` glob list uploads (literal names and `dist/*.ext`). */
function uploaded(globs: string[], names: string[]): string[] {
  return names.filter((n) =>
    globs.some((g) => {
      const base = basename(g);
      return base.startsWith("*") ? n.endsWith(base.slice(1)) : n === base;
    })
  );
}

/** Runs build.ts for a tag (as the workflow does), then publishes what the upload step takes. */
async function release(store: ReleaseStore, bins: string, tag: string): Promise<Obj> {
  const out = await Deno.makeTempDir({ prefix: "dist-" });
  const outputs = join(out, "github-output");
  const res = await runScript("scripts/build.ts", [
    ...["--version", tag, "--repo", REPO, "--out", out],
    ...["--skip-compile", "--binaries-dir", bins],
  ], { env: { GITHUB_OUTPUT: outputs, PATH: Deno.env.get("PATH") ?? "" } });
  assert.equal(res.code, 0, res.stderr);
  const stepOutputs = Object.fromEntries(
    (await Deno.readTextFile(outputs)).trim().split("\n").map((l) => l.split("=")),
  );
  const upload = await uploadStep();
  const names = [...Deno.readDirSync(out)].map((e) => e.name);
  const assets = new Map<string, Uint8Array>();
  for (const n of uploaded(String(upload.files).trim().split("\n"), names)) {
    assets.set(n, await Deno.readFile(join(out, n)));
  }
  const notes = await Deno.readTextFile(join(out, RELEASE_NOTES));
  store.releases.push({ tag, prerelease: stepOutputs.prerelease === "true", assets });
  await Deno.remove(out, { recursive: true });
  return { stepOutputs, notes };
}

/** `provider add`: fetch, parse, validate; then the binaries it would download exist. */
function add(store: ReleaseStore, line: "devpod" | "devsy", source: string): Obj {
  const config = parseProviderYaml(new TextDecoder().decode(store.get(providerUrl(line, source))));
  assert.deepEqual(validateProviderConfig(config), [], source);
  const c = config as Obj;
  for (const b of c.binaries.DOKPLOY_PROVIDER) {
    assert.match(b.path, new RegExp(`/releases/download/${c.version}/`), "binaries of its own tag");
    store.get(b.path);
  }
  return c;
}

Deno.test("the resolvers' URLs: latest, a tag, short names, bad paths", () => {
  assert.equal(
    providerUrl("devsy", REPO),
    `https://github.com/${REPO}/releases/latest/download/provider.yaml`,
  );
  assert.equal(
    providerUrl("devsy", `github.com/${REPO}@v1.2.3`),
    `https://github.com/${REPO}/releases/download/v1.2.3/provider.yaml`,
  );
  assert.match(providerUrl("devsy", "ssh"), /devsy-org\/devsy-provider-ssh\/releases\/latest/);
  assert.match(providerUrl("devpod", "ssh"), /loft-sh\/devpod-provider-ssh\/releases\/latest/);
  assert.throws(() => providerUrl("devsy", "a/b/c"), /invalid github path/);
});

Deno.test("release workflow + build.ts: provider add <owner>/<repo>[@tag] and versions work", async () => {
  const bins = await Deno.makeTempDir({ prefix: "fake-bins-" });
  for (const t of TARGETS) await Deno.writeTextFile(join(bins, t.fileName), `bin ${t.fileName}\n`);
  const store = new ReleaseStore();
  try {
    const first = await release(store, bins, "v1.0.0");
    assert.deepEqual(first.stepOutputs, { prerelease: "false" });
    assert.match(first.notes, new RegExp(`devsy provider add ${REPO}@v1\\.0\\.0`));
    assert.match(first.notes, new RegExp(`devpod provider add ${REPO}@v1\\.0\\.0`));
    await release(store, bins, "v1.1.0");
    const rc = await release(store, bins, "v1.2.0-rc.1");
    assert.deepEqual(rc.stepOutputs, { prerelease: "true" });
    assert.match(rc.notes, /pre-release/);

    // Every file the CLI fetches is an asset: provider.yaml by that exact name.
    assert.ok(store.releases.every((r) => r.assets.has("provider.yaml")));
    for (const line of ["devpod", "devsy"] as const) {
      assert.equal(
        add(store, line, REPO).version,
        "v1.1.0",
        `${line}: latest is the newest stable`,
      );
      assert.equal(add(store, line, `${REPO}@v1.0.0`).version, "v1.0.0");
      assert.equal(add(store, line, `github.com/${REPO}@v1.2.0-rc.1`).version, "v1.2.0-rc.1");
    }
    // `devsy provider versions` and updating to each listed tag.
    assert.deepEqual(store.versions(false), ["v1.1.0", "v1.0.0"]);
    assert.deepEqual(store.versions(true), ["v1.2.0-rc.1", "v1.1.0", "v1.0.0"]);
    for (const tag of store.versions(true)) {
      assert.equal(add(store, "devsy", `${REPO}@${tag}`).version, tag);
    }
  } finally {
    await Deno.remove(bins, { recursive: true });
  }
});

Deno.test("the workflow: semver tags only, pre-releases never `latest`, notes as the body", async () => {
  const wf = parse(await Deno.readTextFile(WORKFLOWS[1])) as Obj;
  const [pattern] = wf.on.push.tags as string[];
  // GitHub's filter syntax: `+` repeats the previous character class, `*` is any run.
  const re = new RegExp(`^${pattern.replaceAll(".", "\\.").replaceAll("*", ".*")}$`);
  for (const tag of ["v1.2.3", "v10.0.0-rc.1", "v0.1.0+build.5"]) assert.match(tag, re);
  for (const tag of ["v1", "vnext", "1.2.3", "v1.2"]) assert.doesNotMatch(tag, re);

  const upload = await uploadStep();
  assert.equal(upload.prerelease, "${{ steps.build.outputs.prerelease }}");
  assert.equal(upload.make_latest, "${{ steps.build.outputs.prerelease == 'false' }}");
  assert.equal(upload.body_path, `dist/${RELEASE_NOTES}`);
  const build = wf.jobs.release.steps.find((s: Obj) => String(s.run ?? "").includes("build.ts"));
  assert.equal(build.id, "build");
  assert.equal(isPrerelease("v1.2.3+meta-data"), false, "build metadata is no pre-release");
  assert.equal(isPrerelease("v1.2.3-0"), true);
});
