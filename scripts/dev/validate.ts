/**
 * `deno task validate` (the seed's `make validate`): the committed provider.yaml matches
 * the model and passes DevPod's rules, a release-shaped render passes them too, the
 * README option table is current, and the workflows parse.
 */
import { parse } from "yaml";
import { renderReleaseYaml, TARGETS } from "../build.ts";
import {
  checkProviderPolicy,
  parseProviderYaml,
  validateProviderConfig,
} from "../provider_yaml.ts";
import { renderOptionsTable, replaceOptionsRegion } from "../readme.ts";
import { COMMITTED_PROVIDER_YAML, PROJECT_VERSION, README, repoPath, REPOSITORY } from "./paths.ts";
import { renderCommittedProviderYaml } from "./render.ts";

export const WORKFLOWS = ["ci.yml", "release.yml"].map((f) => repoPath(".github", "workflows", f));

/** Parses a GitHub workflow (YAML 1.2, where `on` is a plain key) and checks its shape. */
export function workflowProblems(text: string): string[] {
  const wf = parse(text);
  if (typeof wf !== "object" || wf === null) return ["not a mapping"];
  const problems: string[] = [];
  if (!("on" in wf)) problems.push("has no `on:` trigger");
  const jobs = (wf as { jobs?: unknown }).jobs;
  if (typeof jobs !== "object" || jobs === null || Object.keys(jobs).length === 0) {
    problems.push("has no jobs");
  }
  return problems;
}

type Check = [string, () => Promise<string[]>];

const checks: Check[] = [
  ["committed provider.yaml matches lib/options.ts", async () => {
    const current = await Deno.readTextFile(COMMITTED_PROVIDER_YAML);
    return current === renderCommittedProviderYaml() ? [] : ["out of date: run `deno task render`"];
  }],
  ["committed provider.yaml passes DevPod's rules", async () => {
    const parsed = parseProviderYaml(await Deno.readTextFile(COMMITTED_PROVIDER_YAML));
    return [...validateProviderConfig(parsed), ...checkProviderPolicy(parsed)];
  }],
  ["a release render (with checksums) passes DevPod's rules", () => {
    const checksums = Object.fromEntries(TARGETS.map((t) => [t.fileName, "0".repeat(64)]));
    try {
      renderReleaseYaml({ version: PROJECT_VERSION, repo: REPOSITORY, checksums });
      return Promise.resolve([]);
    } catch (e) {
      return Promise.resolve([(e as Error).message]);
    }
  }],
  ["README.md option table matches lib/options.ts", async () => {
    const current = await Deno.readTextFile(README);
    const fresh = replaceOptionsRegion(current, renderOptionsTable());
    return current === fresh ? [] : ["out of date: run `deno task readme`"];
  }],
  ...WORKFLOWS.map((path): Check => [`${path.split(/[\\/]/).pop()} parses`, async () => {
    try {
      return workflowProblems(await Deno.readTextFile(path));
    } catch (e) {
      return [(e as Error).message];
    }
  }]),
];

if (import.meta.main) {
  let failed = 0;
  for (const [name, run] of checks) {
    const problems = await run().catch((e) => [(e as Error).message]);
    console.log(`${problems.length ? "✗" : "✓"} ${name}`);
    for (const p of problems) console.log(`    ${p}`);
    if (problems.length) failed++;
  }
  if (failed) Deno.exit(1);
}
