/** The GitHub workflows parse and have the shape the release process relies on. */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { TARGETS } from "../../scripts/build.ts";
import { workflowProblems, WORKFLOWS } from "../../scripts/dev/validate.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

const [CI, RELEASE] = WORKFLOWS;
const load = async (path: string) => parse(await Deno.readTextFile(path)) as Obj;
const steps = (job: Obj): Obj[] => job.steps ?? [];
const runs = (job: Obj) => steps(job).map((s) => String(s.run ?? "")).join("\n");
const uses = (job: Obj, action: string) => steps(job).find((s) => s.uses?.startsWith(action));

Deno.test("both workflows parse with triggers and jobs", async () => {
  for (const path of WORKFLOWS) {
    assert.deepEqual(workflowProblems(await Deno.readTextFile(path)), [], path);
  }
  assert.deepEqual(workflowProblems("name: x\n"), ["has no `on:` trigger", "has no jobs"]);
});

Deno.test("ci: push and pull_request, Linux and macOS, Deno 2, check and tests", async () => {
  const ci = await load(CI);
  assert.ok("push" in ci.on && "pull_request" in ci.on);
  const job = ci.jobs.test;
  assert.deepEqual(job.strategy.matrix.os, ["ubuntu-latest", "macos-latest"]);
  assert.equal(job["runs-on"], "${{ matrix.os }}");
  assert.equal(uses(job, "denoland/setup-deno@")?.with["deno-version"], "v2.x");
  assert.ok(uses(job, "actions/checkout@"));
  const script = runs(job);
  assert.match(script, /apt-get install -y openssh-client/);
  assert.match(script, /deno task check/);
  assert.match(script, /deno task engine up/);
  assert.match(script, /deno task test/);
  assert.match(script, /deno test --allow-all --parallel tests\/unit tests\/dist/);
});

Deno.test("release: on semver v* tags, image digest feeds build.ts, all assets uploaded", async () => {
  const rel = await load(RELEASE);
  assert.deepEqual(rel.on.push.tags, ["v[0-9]+.[0-9]+.[0-9]+*"]);

  const image = rel.jobs.image;
  const push = uses(image, "docker/build-push-action@")!;
  assert.equal(push.with.file, "machine/Dockerfile");
  assert.equal(push.with.platforms, "linux/amd64,linux/arm64");
  assert.equal(push.with.push, true);
  assert.match(runs(image), /ghcr\.io\/\$\{OWNER,,\}\/devpod-dokploy-machine/);
  assert.match(image.outputs.ref, /steps\.ref\.outputs\.ref/);
  assert.equal(image.permissions.packages, "write");

  const release = rel.jobs.release;
  assert.deepEqual(release.needs, ["test", "image"]);
  assert.equal(release.permissions.contents, "write");
  const build = steps(release).find((s) => String(s.run ?? "").includes("scripts/build.ts"))!;
  assert.match(build.run, /--version "\$VERSION" --repo "\$REPO"/);
  assert.match(build.run, /--machine-image "\$MACHINE_IMAGE"/);
  assert.equal(build.env.VERSION, "${{ github.ref_name }}");
  assert.equal(build.env.REPO, "${{ github.repository }}");
  assert.equal(build.env.MACHINE_IMAGE, "${{ needs.image.outputs.ref }}");

  const upload = uses(release, "softprops/action-gh-release@")!;
  const files = String(upload.with.files).trim().split("\n");
  assert.ok(files.includes("dist/provider.yaml"));
  for (const t of TARGETS) assert.ok(files.includes(`dist/${t.fileName}`), t.fileName);
  assert.ok(files.includes("dist/*.sha256"));
  assert.equal(upload.with.fail_on_unmatched_files, true);
});
