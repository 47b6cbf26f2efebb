/**
 * The HTTP face of the emulator: Dokploy's `/api/<router>.<procedure>` transport
 * (trpc-openapi behind an API-key check), in the order the real server applies it:
 * faults (ours) → auth → route → content type → JSON → input validation → handler.
 */
import type { Ctx, Procedures } from "./context.ts";
import { ApiError, codeForStatus } from "./errors.ts";
import type { FaultController } from "./faults.ts";
import { DROP, type HttpReply, type HttpRequest } from "./http_server.ts";
import { operations, queryInput } from "./openapi.ts";
import { hasProcedure, inputSchema } from "./profiles.ts";
import { type Issue, validate } from "./schema.ts";
import { sleepUnlessAborted } from "./sleep.ts";
import { composeProcedures } from "./procedures/compose.ts";
import { projectProcedures } from "./procedures/projects.ts";
import { runtimeProcedures } from "./procedures/runtime_views.ts";
import { serverProcedures } from "./procedures/servers.ts";
import { backupProcedures } from "./procedures/backups.ts";
import { domainProcedures } from "./procedures/domains.ts";
import { trpcRoute } from "./trpc_route.ts";
import { checkAccess, filterView, recordCreated, userGet } from "./access.ts";
import type { MemberRow, Team } from "./team.ts";

export interface RecordedRequest {
  method: string;
  /** The part after `/api/`, as sent (e.g. "compose.deploy"); 0 status = dropped. */
  procedure: string;
  status: number;
  query: Record<string, string>;
  body: unknown;
  headers: Record<string, string>;
}

export interface ApiOptions {
  ctx: Ctx;
  /** Who each API key is (team.ts): the key decides what a call may do and see. */
  team: Team;
  faults: FaultController;
  requests: RecordedRequest[];
  latencyMs: number;
  log?: (line: string) => void;
}

const PROCEDURES: Map<string, Procedures[string]> = new Map(
  Object.entries({
    ...projectProcedures,
    ...composeProcedures,
    ...runtimeProcedures,
    ...serverProcedures,
    ...backupProcedures,
    ...domainProcedures,
  })
    .map(([name, fn]) => [name.toLowerCase(), fn]),
);

const json = (status: number, value: unknown): HttpReply => ({
  status,
  body: value === undefined ? "" : JSON.stringify(value),
});

const NOT_FOUND = () => json(404, { message: "Not found" });

export function createApiHandler(opts: ApiOptions) {
  return async (req: HttpRequest): Promise<HttpReply | typeof DROP> => {
    const started = Date.now();
    const procedure = req.path.startsWith("/api/") ? safeDecode(req.path.slice(5)) : req.path;
    const reply = await handle(opts, req, procedure);
    if (opts.latencyMs > 0) await new Promise((r) => setTimeout(r, opts.latencyMs));
    const status = reply === DROP ? 0 : reply.status;
    opts.requests.push({
      method: req.method,
      procedure,
      status,
      query: Object.fromEntries(req.query),
      body: parseJsonOrNull(req.body),
      headers: req.headers,
    });
    opts.log?.(`${req.method} ${procedure} ${status || "dropped"} ${Date.now() - started}ms`);
    return reply;
  };
}

async function handle(
  opts: ApiOptions,
  req: HttpRequest,
  procedure: string,
): Promise<HttpReply | typeof DROP> {
  if (!req.path.startsWith("/api/")) return NOT_FOUND();

  const fault = opts.faults.take(procedure);
  if (fault) {
    if (fault.delayMs) await sleepUnlessAborted(fault.delayMs, req.closed);
    // The server went down while the call waited: a dead process handles nothing.
    if (fault.drop || req.closed.aborted) return DROP;
    if (fault.status !== undefined) {
      const body = fault.body !== undefined
        ? fault.body
        : fault.status === 401
        ? { message: "Unauthorized" }
        : { message: `Injected fault (${fault.status})`, code: codeForStatus(fault.status) };
      return json(fault.status, body);
    }
  }
  const reply = await route(opts, req, procedure);
  return fault?.dropAfter ? DROP : reply;
}

/** Normal handling: auth → route → content type → JSON → validation → handler. */
async function route(
  opts: ApiOptions,
  req: HttpRequest,
  procedure: string,
): Promise<HttpReply> {
  if (procedure === "health" && req.method === "GET") return json(200, { ok: true });
  // Native tRPC (pages/api/trpc/[trpc].ts): its own auth and error shapes.
  const caller = callerOf(opts, req.headers);
  if (procedure.startsWith("trpc/")) {
    return trpcRoute(opts.ctx, req, procedure.slice(5), caller !== null);
  }
  if (!caller) return json(401, { message: "Unauthorized" });

  const { profile } = opts.ctx;
  const op = operations().get(procedure.toLowerCase());
  if (!op || op.method !== req.method || !hasProcedure(profile, op.procedure)) return NOT_FOUND();

  let input: unknown;
  if (op.method === "GET") {
    input = queryInput(op.schema, req.query);
  } else {
    const type = req.headers["content-type"] ?? "";
    if (!type.toLowerCase().startsWith("application/json")) {
      return json(415, {
        message: `Unsupported content-type "${type}"`,
        code: "UNSUPPORTED_MEDIA_TYPE",
      });
    }
    const text = new TextDecoder().decode(req.body);
    try {
      input = text.trim() === "" ? undefined : JSON.parse(text);
    } catch {
      return { status: 400, contentType: "text/plain; charset=utf-8", body: "Invalid JSON" };
    }
  }

  const schema = inputSchema(profile, op.procedure, op.schema);
  if (schema) {
    const result = validate(schema, input);
    if (!result.ok) return validationError(op.procedure, result.issues);
    input = result.value;
  }

  if (op.procedure === "user.get") return json(200, userGet(caller));
  const handler = PROCEDURES.get(op.procedure.toLowerCase());
  if (!handler) {
    return errorReply(
      op.procedure,
      new ApiError("INTERNAL_SERVER_ERROR", `dokploy-emulator: ${op.procedure} is not implemented`),
    );
  }
  try {
    const given = (input ?? {}) as Record<string, unknown>;
    checkAccess(opts.ctx, caller, op.procedure, given);
    const result = filterView(caller, op.procedure, await handler(opts.ctx, given));
    recordCreated(caller, op.procedure, result);
    return json(200, result);
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError("INTERNAL_SERVER_ERROR", String(e));
    return errorReply(op.procedure, err);
  }
}

/**
 * The member an API key acts as. Only `x-api-key` (v0.19+) or only `Authorization: Bearer`
 * (≤ v0.18) is honoured.
 */
function callerOf(opts: ApiOptions, headers: Record<string, string>): MemberRow | null {
  if (opts.ctx.profile.auth === "bearer") {
    const bearer = /^Bearer (.+)$/.exec(headers["authorization"] ?? "")?.[1];
    return opts.team.callerOf(bearer);
  }
  return opts.team.callerOf(headers["x-api-key"]);
}

function errorReply(path: string, err: ApiError): HttpReply {
  return json(err.status, {
    message: err.message,
    code: err.code,
    data: { code: err.code, httpStatus: err.status, path },
  });
}

function validationError(path: string, issues: Issue[]): HttpReply {
  const fieldErrors: Record<string, string[]> = {};
  const formErrors: string[] = [];
  for (const issue of issues) {
    const key = issue.path[0];
    if (key === undefined) formErrors.push(issue.message);
    else (fieldErrors[String(key)] ??= []).push(issue.message);
  }
  return json(400, {
    message: "Input validation failed",
    code: "BAD_REQUEST",
    data: {
      code: "BAD_REQUEST",
      httpStatus: 400,
      path,
      zodError: { formErrors, fieldErrors },
    },
    issues,
  });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseJsonOrNull(body: Uint8Array): unknown {
  if (!body.length) return null;
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return null;
  }
}
