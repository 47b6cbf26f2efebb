/** Generated files in the repository must match a fresh render, so they cannot drift. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { OPTIONS } from "../../lib/options.ts";
import {
  checkProviderPolicy,
  parseProviderYaml,
  validateProviderConfig,
} from "../../scripts/provider_yaml.ts";
import {
  END_MARKER,
  renderOptionsTable,
  replaceOptionsRegion,
  START_MARKER,
} from "../../scripts/readme.ts";
import { renderCommittedProviderYaml } from "../../scripts/dev/render.ts";
import { PROJECT_VERSION } from "../../scripts/dev/paths.ts";
import { REPO } from "./_helpers.ts";

Deno.test("committed provider.yaml equals a fresh render (run `deno task render`)", async () => {
  const committed = await Deno.readTextFile(join(REPO, "provider.yaml"));
  assert.equal(committed, renderCommittedProviderYaml());
});

Deno.test("committed provider.yaml: deno.json's version, release URLs, no checksums", async () => {
  const parsed = parseProviderYaml(await Deno.readTextFile(join(REPO, "provider.yaml"))) as {
    version: string;
    binaries: { DOKPLOY_PROVIDER: { path: string; checksum?: string }[] };
  };
  assert.equal(parsed.version, PROJECT_VERSION);
  assert.deepEqual(validateProviderConfig(parsed), []);
  assert.deepEqual(checkProviderPolicy(parsed), []);
  for (const b of parsed.binaries.DOKPLOY_PROVIDER) {
    assert.match(b.path, new RegExp(`/releases/download/${PROJECT_VERSION}/devpod-provider-`));
    assert.equal(b.checksum, undefined);
  }
});

Deno.test("README.md's option table equals the model (run `deno task readme`)", async () => {
  const readme = await Deno.readTextFile(join(REPO, "README.md"));
  assert.equal(readme, replaceOptionsRegion(readme, renderOptionsTable()));
});

Deno.test("the options table has one row per option, flags included", () => {
  const rows = renderOptionsTable().split("\n").slice(2);
  assert.deepEqual(rows.map((r) => r.split("|")[1].trim()), OPTIONS.map((o) => `\`${o.name}\``));
  const token = rows.find((r) => r.includes("`DOKPLOY_API_TOKEN`"))!;
  assert.match(token, /required, secret, global/);
  assert.ok(rows.find((r) => r.includes("`MACHINE_TYPE`"))!.includes("`small`"));
});

Deno.test("replaceOptionsRegion keeps everything outside the markers", () => {
  const doc = `# T\n\nbefore\n${START_MARKER}\nold table\n${END_MARKER}\nafter\n`;
  const out = replaceOptionsRegion(doc, "NEW");
  assert.ok(out.startsWith(`# T\n\nbefore\n${START_MARKER}\n\nNEW\n\n`));
  assert.ok(out.endsWith(`${END_MARKER}\nafter\n`));
  assert.ok(!out.includes("old table"));
  assert.throws(() => replaceOptionsRegion("no markers", "x"), /options:start/);
});
