/**
 * Dokploy's volume backup and restore commands on the real engine (the emulator's
 * real-engine runtime): `docker run … ubuntu bash -c "cd /volume_data && tar cvf …"`,
 * turnOff's `docker stop` / `docker start` of the compose container, rclone to a real
 * s3rver, and the restore stream's `docker volume ls` / `docker ps -a --filter volume=`
 * checks, all against dockerd.
 */
import assert from "node:assert/strict";
import { backUpOnce, destinationInput, restore } from "../emulator/backup_support.ts";
import { startEmulator } from "../emulator/mod.ts";
import { startS3 } from "../emulator/s3.ts";
import { ok } from "../emulator/test_support.ts";
import { ensureEngine } from "./engine.ts";
import { docker, ensureImages } from "./images.ts";
import { deployMachineShaped } from "./machine_shaped.ts";

const RUN = Deno.pid.toString(36);
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false, ignore: Deno.uid() !== 0 };

Deno.test(
  "real engine: turnOff backup stops and restarts the container; restore into a new volume",
  NO_SANITIZE,
  async () => {
    const engine = await ensureEngine();
    const images = await ensureImages(engine);
    const s3 = await startS3({ buckets: ["devpod-backups"] });
    const emu = await startEmulator({ engine });
    const restored = `restored-${RUN}`;
    try {
      // stop_grace_period → docker stop's wait, checked below.
      const c = await deployMachineShaped(emu, images.tiny, {
        project: "backups",
        serviceLines: ["stop_grace_period: 7s"],
      });
      const appName = c.appName;
      const id = (await docker(engine, [
        "ps",
        "-q",
        "--filter",
        `label=com.docker.compose.project=${appName}`,
      ]))
        .stdout.trim();
      assert.ok(id, "the machine container runs");
      const inspect = async () => JSON.parse((await docker(engine, ["inspect", id])).stdout)[0];
      const startedBefore = (await inspect()).State.StartedAt;
      assert.equal((await inspect()).Config.StopTimeout, 7); // stop_grace_period → docker stop's wait
      const put = await docker(engine, [
        "exec",
        id,
        "sh",
        "-c",
        "echo 'engine bytes' > /home/devpod/kept.txt",
      ]);
      assert.equal(put.code, 0, put.stderr);

      const d = await ok(emu, "POST", "destination.create", destinationInput(s3));
      const { run, log } = await backUpOnce(emu, {
        destinationId: String(d.destinationId),
        composeId: String(c.composeId),
        volumeName: `${appName}_home`,
        turnOff: true,
      });
      assert.equal(run.status, "done", log);
      assert.match(log, /Stopping compose container\n[0-9a-f]{12}\n/);
      assert.match(log, /\.\/kept\.txt\n/);
      const after = await inspect();
      assert.equal(after.State.Running, true);
      assert.notEqual(
        after.State.StartedAt,
        startedBefore,
        "docker stop + docker start really ran",
      );
      const [key] = await s3.objects();
      assert.match(key, new RegExp(`^${appName}_machine/devpod/${appName}_home-.*\\.tar$`));

      // Restore: the machine's own volume is in use; a new name is created and filled.
      const input = {
        backupFileName: key,
        destinationId: d.destinationId,
        id: c.composeId,
        serviceType: "compose",
      };
      const busy = await restore(emu, { ...input, volumeName: `${appName}_home` });
      assert.match(busy.values.join(""), /❌ Volume restore aborted - volume is in use/);
      assert.equal(busy.values.at(-1), "❌ Volume restore failed!");
      const fresh = await restore(emu, { ...input, volumeName: restored });
      assert.equal(
        fresh.values.at(-2),
        "✅ Volume restore completed successfully!",
        fresh.values.join(""),
      );
      const read = await docker(engine, [
        "run",
        "--rm",
        "-v",
        `${restored}:/v`,
        images.tiny,
        "cat",
        "/v/kept.txt",
      ]);
      assert.equal(read.stdout, "engine bytes\n");
    } finally {
      await emu.close();
      await s3.close();
      await docker(engine, ["volume", "rm", "-f", restored]);
    }
  },
);
