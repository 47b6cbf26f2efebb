/**
 * `volumeBackups.restoreVolumeBackupWithLogs`, a tRPC subscription (not on the REST
 * `/api`): checks, then an observable that emits the router's own lines, the restore
 * script's output chunk by chunk (execAsyncStream: a chunk may hold several lines or part
 * of one), and the router's closing lines. A failed script is swallowed: the stream ends
 * `❌ Volume restore failed!` instead of `✅ Volume restore completed successfully!`.
 *
 * Locally the script runs under node's exec 1 MiB output limit: a `tar xvf` listing
 * longer than that kills the shell and the restore "fails" (the real engine's container
 * goes on extracting unattended).
 */
import type { Ctx } from "../context.ts";
import { basePath, execOn } from "../dokploy_exec.ts";
import type { JsonSchema } from "../schema.ts";
import { restoreScript } from "./commands.ts";
import { errorShape } from "./trpc_sse.ts";

export const RESTORE_PROCEDURE = "volumeBackups.restoreVolumeBackupWithLogs";

/** The subscription's zod input (not in the OpenAPI document). */
export const RESTORE_INPUT: JsonSchema = {
  type: "object",
  properties: {
    backupFileName: { type: "string", minLength: 1 },
    destinationId: { type: "string", minLength: 1 },
    volumeName: { type: "string", minLength: 1, pattern: "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$" },
    id: { type: "string", minLength: 1 },
    serviceType: { type: "string", enum: ["application", "compose"] },
    serverId: { type: "string" },
  },
  required: ["backupFileName", "destinationId", "volumeName", "id", "serviceType"],
};

export interface RestoreInput {
  backupFileName: string;
  destinationId: string;
  volumeName: string;
  id: string;
  serviceType: "application" | "compose";
  serverId?: string;
}

/** The values the observable emits, or the error that ends the stream before them. */
export function restoreStream(
  ctx: Ctx,
  input: RestoreInput,
): AsyncIterable<string> | { error: ReturnType<typeof errorShape> } {
  const destination = ctx.store.destinations.get(input.destinationId);
  if (!destination) {
    return { error: errorShape("NOT_FOUND", "Destination not found", RESTORE_PROCEDURE) };
  }
  if (input.serverId && !ctx.store.servers.has(input.serverId)) {
    return { error: errorShape("NOT_FOUND", "Server not found", RESTORE_PROCEDURE) };
  }
  const queue = new Emitted();
  const emit = (line: string) => queue.push(line);
  const run = async () => {
    try {
      emit("🚀 Starting volume restore process...");
      emit(`📂 Backup File: ${input.backupFileName}`);
      emit(`🔧 Volume Name: ${input.volumeName}`);
      emit(`🏷️ Service Type: ${input.serviceType}`);
      emit("");
      // restoreVolume: the service must exist (there are no applications here).
      const compose = input.serviceType === "compose"
        ? ctx.store.composes.get(input.id)
        : undefined;
      if (!compose) {
        throw new Error(`${input.serviceType === "compose" ? "Compose" : "Application"} not found`);
      }
      const script = restoreScript({
        destination,
        volumeName: input.volumeName,
        backupFileName: input.backupFileName,
        base: basePath(ctx, input.serverId),
        compose: { appName: compose.appName, composeType: compose.composeType },
      });
      emit("📋 Generated restore command:");
      emit("▶️ Executing restore...");
      emit("");
      emit(
        input.serverId
          ? `🌐 Executing on remote server: ${input.serverId}`
          : "🖥️ Executing on local server",
      );
      await execOn(ctx, input.serverId, script, emit);
      emit("");
      emit("✅ Volume restore completed successfully!");
      emit("🎉 All containers/services have been restarted with the restored volume.");
    } catch {
      emit("");
      emit("❌ Volume restore failed!");
    } finally {
      queue.end();
    }
  };
  // Dokploy does not wait for the client: the restore goes on if it disconnects.
  run();
  return queue;
}

/** An observable turned async iterable: values queue until read; end() completes it. */
class Emitted implements AsyncIterable<string> {
  #values: string[] = [];
  #ended = false;
  #wake?: () => void;

  push(value: string) {
    this.#values.push(value);
    this.#wake?.();
  }

  end() {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    while (true) {
      if (this.#values.length) {
        yield this.#values.shift()!;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = undefined;
    }
  }
}
