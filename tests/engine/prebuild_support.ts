/**
 * DevPod's prebuild flow, reproduced inside a machine where no DevPod agent runs
 * (../../shared/devpod-protocol.md "Prebuilds"): the tag is a content hash of the
 * config (architecture, reduced config, Dockerfile text); the agent asks the registry
 * for `REPO:tag` with a manifest GET over plain HTTP to localhost (go-containerregistry);
 * found, the engine pulls it and runs it; missing, DevPod builds and tags `REPO:tag`
 * (and never pushes on `up`). Shared by the real-engine test and the bench.
 *
 * The build is DevPod's ("Build with internal buildkit..."): its agent hands the Dockerfile
 * to the engine's embedded BuildKit (a Solve over the engine API's /grpc and /session, with
 * the `dockerfile.v0` frontend) and exports the result with the `moby` exporter under
 * `name` = the tag (loft-sh/devpod pkg/devcontainer/buildkit). That exporter names the
 * image itself, and on docker 20.10 (the machine image's engine) emits no image event at
 * all. Here the same Solve is asked of the same BuildKit through the API's /build with
 * version=2 and that one output, so the same exporter tags the image. Not `docker build
 * -t`, with or without BuildKit: on 20.10 the daemon tags that afterwards itself, and that
 * emits a `tag` event, which DevPod's build never does.
 */
import type { World } from "../e2e/harness.ts";
import { PREBUILD_REPOSITORY } from "../../lib/prebuild/spec.ts";

/** What go-containerregistry's remote.Image accepts. */
const ACCEPT = [
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

export interface DevcontainerConfig {
  /** The devcontainer's Dockerfile (its FROM is an image the machine's engine holds). */
  dockerfile: string;
  /** The reduced devcontainer.json DevPod hashes (name, build, features, …). */
  config: Record<string, unknown>;
}

/** `devpod-` + 32 hex of sha256(arch, config JSON, Dockerfile), as CalculatePrebuildHash. */
export async function prebuildTag(c: DevcontainerConfig, arch = "amd64"): Promise<string> {
  const text = arch + JSON.stringify(c.config) + c.dockerfile;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  return `devpod-${hex.slice(0, 32)}`;
}

export interface UpResult {
  /** "found": started from the prebuild; "built": built here (the slow step ran). */
  how: "found" | "built";
  /** What the started container printed (the builder's marker file). */
  output: string;
  seconds: number;
  log: string;
  /** Built: when the build ended (epoch seconds, the machine's clock: the host's). */
  builtAt?: number;
  /** Built: the image events the engine emitted during the build (DevPod's: none). */
  imageEvents?: string[];
}

/** DevPod's one export entry for a build it loads into the engine (buildkit.go). */
function mobyOutput(image: string): string {
  return encodeURIComponent(JSON.stringify([{ Type: "moby", Attrs: { name: image } }]));
}

/**
 * `devpod up`'s image step in machine `id`: the agent's manifest check, then pull or
 * build, then the container starts (prints /built-on). Bounded.
 */
export async function upEquivalent(
  w: Pick<World, "run">,
  id: string,
  c: DevcontainerConfig,
): Promise<UpResult> {
  const tag = await prebuildTag(c);
  const image = `${PREBUILD_REPOSITORY}:${tag}`;
  const repo = PREBUILD_REPOSITORY.slice(PREBUILD_REPOSITORY.indexOf("/") + 1);
  const script = `set -e
url=http://localhost:${PREBUILD_REPOSITORY.split("/")[0].split(":")[1]}/v2/${repo}/manifests/${tag}
if curl -fsS -o /dev/null --max-time 20 -H '${`Accept: ${ACCEPT}`}' "$url" 2>/tmp/check.err; then
  echo "how=found"
  docker pull -q ${image} >/dev/null
else
  echo "how=built"
  dir=$(mktemp -d)
  printf '%s' '${c.dockerfile.replaceAll("'", `'"'"'`)}' >"$dir/Dockerfile"
  tar -C "$dir" -cf "$dir/context.tar" Dockerfile
  start=$(date +%s.%N)
  curl -sS --max-time 200 --unix-socket /var/run/docker.sock -X POST \\
    -H 'Content-Type: application/x-tar' --data-binary @"$dir/context.tar" \\
    "http://docker/build?version=2&outputs=${mobyOutput(image)}" >"$dir/build.log"
  end=$(date +%s.%N)
  if ! grep -q '"moby.image.id"' "$dir/build.log" || grep -q '"error"' "$dir/build.log"; then
    echo "BuildKit build failed:" >&2; tail -c 2000 "$dir/build.log" >&2; exit 1
  fi
  echo "built_at=$end"
  echo "image_events=$(docker events --since "$start" --until "$end" --filter type=image \\
    --format '{{.Action}}:{{.Actor.Attributes.name}}' | tr '\\n' ' ')"
  rm -rf "$dir"
fi
echo "out=$(docker run --rm --network none ${image} cat /built-on)"
`;
  const t = performance.now();
  const r = await w.run("command", id, { command: script, timeoutMs: 240_000 });
  const seconds = (performance.now() - t) / 1000;
  const how = /how=(found|built)/.exec(r.stdoutText)?.[1];
  const output = /out=(.*)/.exec(r.stdoutText)?.[1];
  if (r.code !== 0 || !how || output === undefined) {
    throw new Error(`up-equivalent in ${id} failed (${r.code}):\n${r.stdoutText}${r.stderr}`);
  }
  const builtAt = /built_at=(\S+)/.exec(r.stdoutText)?.[1];
  const events = /image_events=(.*)/.exec(r.stdoutText)?.[1];
  return {
    how: how as UpResult["how"],
    output,
    seconds,
    log: r.stdoutText,
    builtAt: builtAt ? Number(builtAt) : undefined,
    imageEvents: events?.split(" ").filter(Boolean),
  };
}

/**
 * When `tag` was first in the prebuild registry (epoch seconds), asked from inside machine
 * `id` every 0.1 s (an SSH round trip per look would blur the figure); bounded.
 */
export async function landedAt(
  w: Pick<World, "run">,
  id: string,
  tag: string,
  timeoutS = 120,
): Promise<number> {
  const [host, path] = PREBUILD_REPOSITORY.split("/");
  const r = await w.run("command", id, {
    command: `i=0
until curl -fsI -o /dev/null --max-time 5 -H '${`Accept: ${ACCEPT}`}' http://${host}/v2/${path}/manifests/${tag}; do
  i=$((i + 1)); [ $i -lt ${
      timeoutS * 10
    } ] || { echo "not in the registry after ${timeoutS} s" >&2; exit 1; }
  sleep 0.1
done
date +%s.%N`,
    timeoutMs: (timeoutS + 60) * 1000,
  });
  if (r.code !== 0) throw new Error(`${tag} did not land (${r.code}): ${r.stderr}`);
  return Number(r.stdoutText.trim());
}

/** The manifest digest the prebuild registry holds for `tag`, asked from machine `id`; null: none. */
export async function registryDigest(
  w: Pick<World, "run">,
  id: string,
  tag: string,
): Promise<string | null> {
  const [host, path] = [PREBUILD_REPOSITORY.split("/")[0], PREBUILD_REPOSITORY.split("/")[1]];
  const r = await w.run("command", id, {
    command:
      `curl -sS -o /dev/null -D - --max-time 20 -I -H '${`Accept: ${ACCEPT}`}' http://${host}/v2/${path}/manifests/${tag}`,
    timeoutMs: 60_000,
  });
  if (!/^HTTP\/[\d.]+ 200/m.test(r.stdoutText)) return null;
  return /^docker-content-digest:\s*(\S+)/im.exec(r.stdoutText)?.[1] ?? null;
}

/**
 * A Dockerfile FROM `base` whose RUN step takes `slowS` seconds and leaves a build id no
 * other build has: a container printing the same id started from the same build.
 */
export function slowDockerfile(base: string, slowS: number, variant = "v1"): string {
  return `FROM ${base}\nRUN sleep ${slowS} && echo "${variant} build $(cat /proc/sys/kernel/random/uuid)" >/built-on\n`;
}
