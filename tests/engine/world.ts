/**
 * The end-to-end world on the real engine: the emulator deploys machines with Dokploy's
 * own compose command lines on a real dockerd, and the provider runs as DevPod runs it.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "../e2e/harness.ts";
import { type Engine, ensureEngine } from "./engine.ts";
import { docker, ensureImages, type TestImages } from "./images.ts";
import type { ContainerNames } from "../emulator/machine/compose_command.ts";

export interface EngineWorld extends World {
  engine: Engine;
  images: TestImages;
  /** `docker ARGS` against the test engine; never throws. */
  docker(args: string[], opts?: { stdin?: Uint8Array; timeoutMs?: number }): ReturnType<
    typeof docker
  >;
}

export async function startEngineWorld(
  options: Record<string, string> = {},
  opts: { containerNames?: ContainerNames } = {},
): Promise<EngineWorld> {
  const engine = await ensureEngine();
  const images = await ensureImages(engine);
  const world = await startWorld({
    engine,
    containerNames: opts.containerNames,
    // Local stand-ins for the public images a real server pulls (no registry here).
    options: {
      MACHINE_IMAGE: images.machine,
      PREBUILD_PROXY_IMAGE: images.front,
      READY_TIMEOUT: "120s",
      ...options,
    },
  });
  return {
    ...world,
    engine,
    images,
    docker: (args, opts) => docker(engine, args, opts),
  };
}

/** `docker inspect` of a machine's container, found by its machine-id label. */
export async function inspectMachine(w: EngineWorld, id: string) {
  const ids = await w.docker(["ps", "-aq", "--filter", `label=dev.devpod.machine-id=${id}`]);
  const first = ids.stdout.split("\n").find(Boolean);
  assert.ok(first, `no container for machine ${id}`);
  const r = await w.docker(["inspect", first]);
  return JSON.parse(r.stdout)[0];
}

/**
 * Everything Docker still holds of one compose project: by its label, and a network
 * named after it (the image cache names its network so).
 */
export async function leftovers(w: EngineWorld, appName: string) {
  const ids = async (args: string[]) => (await w.docker(args)).stdout.split("\n").filter(Boolean);
  const label = ["--filter", `label=com.docker.compose.project=${appName}`];
  const networks = new Set([
    ...await ids(["network", "ls", "-q", ...label]),
    ...await ids(["network", "ls", "-q", "--filter", `name=^${appName}$`]),
  ]);
  return {
    containers: await ids(["ps", "-aq", ...label]),
    volumes: await ids(["volume", "ls", "-q", ...label]),
    networks: [...networks],
  };
}

/** Polls `fn` every 500 ms until it gives a truthy value; fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | false>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `docker save IMAGE` on the test engine, as a tar to load into a machine's engine. */
export async function saveImage(
  w: Pick<EngineWorld, "engine">,
  image: string,
): Promise<{ stdout: Uint8Array }> {
  const saved = await new Deno.Command(w.engine.cli, {
    args: ["save", image],
    env: { DOCKER_HOST: w.engine.host },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(saved.success, new TextDecoder().decode(saved.stderr));
  return saved;
}
