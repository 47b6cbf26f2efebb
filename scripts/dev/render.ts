/**
 * `deno task render`: re-renders the committed development provider.yaml (version from
 * deno.json, URLs of that release, no checksums). `--check` only reports drift.
 */
import { parseArgs } from "node:util";
import { GENERATED_HEADER, releaseBinaries } from "../build.ts";
import { renderProviderYaml } from "../provider_yaml.ts";
import { COMMITTED_PROVIDER_YAML, PROJECT_VERSION, REPOSITORY } from "./paths.ts";

/** The provider.yaml that belongs in the repository for the current model and version. */
export function renderCommittedProviderYaml(): string {
  return renderProviderYaml({
    version: PROJECT_VERSION,
    repo: REPOSITORY,
    binaries: releaseBinaries(REPOSITORY, PROJECT_VERSION),
    header: GENERATED_HEADER,
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { check: { type: "boolean", default: false } } });
  const fresh = renderCommittedProviderYaml();
  const current = await Deno.readTextFile(COMMITTED_PROVIDER_YAML).catch(() => "");
  if (values.check) {
    if (current !== fresh) {
      console.error("provider.yaml is out of date with lib/options.ts: run `deno task render`");
      Deno.exit(1);
    }
    console.log("provider.yaml is up to date");
  } else {
    await Deno.writeTextFile(COMMITTED_PROVIDER_YAML, fresh);
    console.log(current === fresh ? "provider.yaml unchanged" : "provider.yaml re-rendered");
  }
}
