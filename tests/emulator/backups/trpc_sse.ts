/**
 * tRPC v11's answer to a subscription over HTTP (httpSubscriptionLink), as Dokploy's
 * `/api/trpc/<procedure>` gives it (@trpc/server 11.10, superjson, no SSE options):
 * always 200 `text/event-stream`; `event: connected` with `data: {}` first, then one
 * `data: <superjson>` event per emitted value, then `event: return` (`data: ` empty) when
 * the observable completes. A failure before the first value (auth, input, a missing
 * row) is an `event: serialized-error` whose data is the superjson of tRPC's error shape.
 * Every event ends with an empty line and one more (`\n\n\n`). No ids, no pings.
 */
import type { Issue } from "../schema.ts";

/** JSON-RPC 2.0 codes of tRPC's error shape. */
const RPC_CODES: Record<string, number> = {
  PARSE_ERROR: -32700,
  BAD_REQUEST: -32600,
  INTERNAL_SERVER_ERROR: -32603,
  UNAUTHORIZED: -32001,
  FORBIDDEN: -32003,
  NOT_FOUND: -32004,
  METHOD_NOT_SUPPORTED: -32005,
};

const HTTP_STATUS: Record<string, number> = {
  PARSE_ERROR: 400,
  BAD_REQUEST: 400,
  INTERNAL_SERVER_ERROR: 500,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_SUPPORTED: 405,
};

export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/** tRPC's error shape with Dokploy's errorFormatter (zodError), production (no stack). */
export function errorShape(code: string, message: string, path: string, issues?: Issue[]) {
  const zodError = issues ? flatten(issues) : null;
  return {
    message,
    code: RPC_CODES[code] ?? -32603,
    data: { code, httpStatus: HTTP_STATUS[code] ?? 500, path, zodError },
  };
}

/** zod's `.flatten()`. */
function flatten(issues: Issue[]) {
  const formErrors: string[] = [];
  const fieldErrors: Record<string, string[]> = {};
  for (const i of issues) {
    if (i.path.length) (fieldErrors[String(i.path[0])] ??= []).push(i.message);
    else formErrors.push(i.message);
  }
  return { formErrors, fieldErrors };
}

const frame = (lines: string[]) => `${lines.join("\n")}\n\n\n`;

/** The event stream of a subscription: `values` (strings, superjson'd), or an error. */
export async function* sseFrames(
  values: AsyncIterable<string> | { error: ReturnType<typeof errorShape> },
): AsyncGenerator<string> {
  yield frame(["event: connected", "data: {}"]);
  if ("error" in values) {
    yield frame(["event: serialized-error", `data: ${JSON.stringify({ json: values.error })}`]);
    return;
  }
  for await (const value of values) yield frame([`data: ${JSON.stringify({ json: value })}`]);
  yield frame(["event: return", "data: "]);
}
