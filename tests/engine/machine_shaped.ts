/**
 * A machine-shaped compose service, deployed through the emulator on the real engine: a
 * named home volume and a PID 1 that ends on SIGTERM, plus the service lines a test adds.
 */
import type { Emulator } from "../emulator/mod.ts";
import { ok } from "../emulator/test_support.ts";

export async function deployMachineShaped(
  emu: Emulator,
  image: string,
  opts: { project: string; serviceLines: string[] },
): Promise<{ composeId: string; appName: string }> {
  const { environment } = await ok<{ environment: { environmentId: string } }>(
    emu,
    "POST",
    "project.create",
    { name: opts.project },
  );
  const composeFile = [
    "services:",
    "  machine:",
    `    image: ${image}`,
    `    entrypoint: ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]`,
    ...opts.serviceLines.map((l) => `    ${l}`),
    "    volumes:",
    "      - home:/home/devpod",
    "volumes:",
    "  home: {}",
    "",
  ].join("\n");
  const c = await ok(emu, "POST", "compose.create", {
    name: "machine",
    environmentId: environment.environmentId,
    composeType: "docker-compose",
    sourceType: "raw",
    composeFile,
  });
  await ok(emu, "POST", "compose.deploy", { composeId: c.composeId });
  await emu.waitIdle(120_000);
  return { composeId: String(c.composeId), appName: String(c.appName) };
}
