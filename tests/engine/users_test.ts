/** The engine's users: live processes count, ended ones (and reused pids) do not. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { addUser, liveUsers, removeUser, startTime } from "./users.ts";

Deno.test("engine users: a process counts while it lives, and is forgotten once it ended", async () => {
  const dir = await Deno.makeTempDir({ prefix: "devpod-users-" });
  const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    await addUser(dir);
    await addUser(dir, child.pid);
    assert.deepEqual(await liveUsers(dir), [Deno.pid, child.pid].sort((a, b) => a - b));

    child.kill("SIGKILL");
    await child.status;
    assert.equal(startTime(child.pid), null);
    assert.deepEqual(await liveUsers(dir), [Deno.pid]);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [String(Deno.pid)]);

    // A pid now held by another process (same number, other start time) is no user.
    await Deno.writeTextFile(join(dir, String(Deno.pid)), "1");
    assert.deepEqual(await liveUsers(dir), []);

    await addUser(dir);
    await removeUser(dir);
    assert.deepEqual(await liveUsers(dir), []);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* ended */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
