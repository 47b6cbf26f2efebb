/**
 * The end-to-end world on the real engine: the emulator deploys machines with Dokploy's
 * own compose command lines on a real dockerd, and the provider runs as DevPod runs it.
 */
import { startWorld, type World } from "../e2e/harness.ts";
import { type Engine, ensureEngine } from "./engine.ts";
import { docker, ensureImages, type TestImages } from "./images.ts";

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
): Promise<EngineWorld> {
  const engine = await ensureEngine();
  const images = await ensureImages(engine);
  const world = await startWorld({
    engine,
    options: { MACHINE_IMAGE: images.machine, READY_TIMEOUT: "120s", ...options },
  });
  return {
    ...world,
    engine,
    images,
    docker: (args, opts) => docker(engine, args, opts),
  };
}
