/**
 * Dokploy's native tRPC endpoint, `/api/trpc/<procedure>` (pages/api/trpc/[trpc].ts,
 * superjson). Only what the REST face cannot do is served here: the volume restore
 * subscription, `GET …/volumeBackups.restoreVolumeBackupWithLogs?input=<{"json":{…}}>`
 * (see backups/trpc_sse.ts for the stream). There is no auth wrapper in front of it: a
 * missing or bad `x-api-key` is the procedure's UNAUTHORIZED, inside the stream.
 */
import { errorShape, SSE_HEADERS, sseFrames } from "./backups/trpc_sse.ts";
import {
  RESTORE_INPUT,
  RESTORE_PROCEDURE,
  type RestoreInput,
  restoreStream,
} from "./backups/restore.ts";
import type { Ctx } from "./context.ts";
import type { HttpReply, HttpRequest } from "./http_server.ts";
import { validate } from "./schema.ts";

/** A plain tRPC JSON error (superjson envelope), for what is not a subscription call. */
function jsonError(status: number, code: string, message: string, path: string): HttpReply {
  return { status, body: JSON.stringify({ error: { json: errorShape(code, message, path) } }) };
}

export function trpcRoute(
  ctx: Ctx,
  req: HttpRequest,
  procedure: string,
  authorized: boolean,
): HttpReply {
  if (procedure.toLowerCase() !== RESTORE_PROCEDURE.toLowerCase()) {
    return jsonError(
      404,
      "NOT_FOUND",
      `dokploy-emulator: only ${RESTORE_PROCEDURE} is served on /api/trpc; use /api/${procedure}`,
      procedure,
    );
  }
  if (req.method !== "GET") {
    return jsonError(
      405,
      "METHOD_NOT_SUPPORTED",
      `Unsupported ${req.method}-request to subscription procedure at path "${RESTORE_PROCEDURE}"`,
      RESTORE_PROCEDURE,
    );
  }
  const stream = (values: Parameters<typeof sseFrames>[0]): HttpReply => ({
    status: 200,
    contentType: SSE_HEADERS["content-type"],
    headers: { "cache-control": SSE_HEADERS["cache-control"], "x-accel-buffering": "no" },
    body: "",
    stream: sseFrames(values),
  });
  const fail = (code: string, message: string, issues?: Parameters<typeof errorShape>[3]) =>
    stream({ error: errorShape(code, message, RESTORE_PROCEDURE, issues) });

  // withPermission's middleware runs before the input is parsed.
  if (!authorized) return fail("UNAUTHORIZED", "UNAUTHORIZED");
  let input: unknown;
  try {
    const raw = req.query.get("input");
    input = raw ? (JSON.parse(raw) as { json?: unknown }).json : undefined;
  } catch (e) {
    return fail("PARSE_ERROR", (e as Error).message);
  }
  const checked = validate(RESTORE_INPUT, input);
  if (!checked.ok) {
    // zod 4's ZodError message: its issues as pretty JSON.
    return fail("BAD_REQUEST", JSON.stringify(checked.issues, null, 2), checked.issues);
  }
  return stream(restoreStream(ctx, checked.value as RestoreInput));
}
