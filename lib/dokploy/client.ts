/**
 * Transport to the Dokploy API (dokploy-api.md §1–2): `x-api-key` auth, queries as
 * GET with flat params, mutations as POST JSON, empty 200 bodies, per-request
 * timeouts, retries with backoff and jitter for idempotent calls only, and one
 * error mapping that never lets the token through. Dokploy restarts in ~20 s on
 * upgrades and reboots: calls safe to repeat ride out such an outage (connection
 * refused/reset, timeouts, 502/503/504) for up to a bounded window, said once per run.
 */
import { DokployError } from "../errors.ts";
import { type Logger, redact, registerSecret, silentLogger } from "../log.ts";

/** GET parameters. No booleans: Dokploy coerces with z.coerce.boolean(), so "false" is true. */
export type QueryParams = Record<string, string | number | null | undefined>;

export interface ClientOptions {
  baseUrl: string;
  token: string;
  /** Per-request timeout; long synchronous calls pass their own. */
  timeoutMs?: number;
  /** Attempts for idempotent calls on a flaky 500/429 (1 = no retry at all, outages included). */
  attempts?: number;
  /** How long an idempotent call rides out an outage (DOKPLOY_RETRY_WINDOW); 0 = not at all. */
  retryWindowMs?: number;
  log?: Logger;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Clock for the retry window (tests advance it with `sleep`). */
  now?: () => number;
  /** Aborts every request (Ctrl-C). */
  signal?: AbortSignal;
  /** Auth header style; only `init`'s version probe uses "bearer" to name old servers. */
  auth?: "x-api-key" | "bearer";
}

export interface CallOptions {
  /** Safe to repeat: outages ride out the retry window, a 500/429 gets a few tries. */
  idempotent?: boolean;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_RETRY_WINDOW_MS = 60_000;
/** A proxy in front of a restarting Dokploy answers these: ride them out for the window. */
const OUTAGE_STATUS = new Set([502, 503, 504]);
/** A real server error may be a blip: a few quick tries, not a whole window. */
const FLAKY_STATUS = new Set([500, 429]);
const MAX_BACKOFF_MS = 4_000;

type RetryKind = "outage" | "flaky" | "final";

/** How a failed call may be retried; 400/401/403/404 and parse errors never are. */
function retryKind(err: unknown): RetryKind {
  if (!(err instanceof DokployError)) return "final";
  if (err.transport || OUTAGE_STATUS.has(err.status!)) return "outage";
  return FLAKY_STATUS.has(err.status!) ? "flaky" : "final";
}

export class DokployClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #retryWindowMs: number;
  readonly #now: () => number;
  /** The outage notice is said once per run, however many calls wait it out. */
  #outageAnnounced = false;
  readonly #log: Logger;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #signal?: AbortSignal;
  readonly #auth: "x-api-key" | "bearer";
  /** Number of HTTP requests sent (the bench and tests count calls). */
  requestCount = 0;
  /** Outages ridden out so far: a caller that sees it grow knows Dokploy may have restarted. */
  outages = 0;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#token = opts.token;
    registerSecret(opts.token);
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#attempts = Math.max(1, opts.attempts ?? 4);
    this.#retryWindowMs = this.#attempts === 1 ? 0 : opts.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? silentLogger;
    this.#fetch = opts.fetch ?? fetch;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#signal = opts.signal;
    this.#auth = opts.auth ?? "x-api-key";
  }

  /** The token, only for re-asking the same server in another auth style. */
  tokenForProbe(): string {
    return this.#token;
  }

  /** A tRPC query: GET with flat query parameters. Always idempotent. */
  query<T>(procedure: string, params: QueryParams = {}, opts: CallOptions = {}): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null) continue;
      // Dokploy's REST adapter drops an empty value: a required one would be "undefined".
      if (v === "") throw new Error(`${procedure}: ${k} is empty (a GET cannot send "")`);
      qs.set(k, String(v));
    }
    const suffix = qs.size ? `?${qs}` : "";
    return this.#call<T>(procedure, "GET", suffix, undefined, { idempotent: true, ...opts });
  }

  /** A tRPC mutation: POST JSON. Retried only when the caller says it is idempotent. */
  mutate<T>(procedure: string, body: unknown, opts: CallOptions = {}): Promise<T> {
    return this.#call<T>(procedure, "POST", "", JSON.stringify(body), opts);
  }

  /**
   * A tRPC subscription over server-sent events (`/api/trpc/<procedure>`, superjson
   * envelope): the data of every event, in order, until the server ends the stream.
   * Dokploy serves some long jobs only this way (restore). Never retried: a repeat would
   * run the job again.
   */
  async subscribe(
    procedure: string,
    input: unknown,
    opts: { timeoutMs: number; onData?: (value: unknown) => void },
  ): Promise<unknown[]> {
    const url = `${this.baseUrl}/api/trpc/${procedure}?input=${
      encodeURIComponent(JSON.stringify({ json: input }))
    }`;
    const signals = [AbortSignal.timeout(opts.timeoutMs)];
    if (this.#signal) signals.push(this.#signal);
    this.requestCount++;
    let res: Response;
    try {
      res = await this.#fetch(url, {
        headers: { accept: "text/event-stream", "x-api-key": this.#token },
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      throw this.#transportError(procedure, err, opts.timeoutMs);
    }
    if (!res.ok || !res.body) throw httpError(procedure, res.status, await res.text());
    const values: unknown[] = [];
    try {
      for await (const event of readServerSentEvents(res.body)) {
        if (event.type === "serialized-error") {
          throw new DokployError(
            `Dokploy failed on ${procedure} (${redact(event.data).slice(0, 300)})`,
            procedure,
            500,
          );
        }
        if (event.type === "return") break;
        if (event.type !== "message" || event.data === "") continue;
        const value = unwrapSuperjson(parseBody(event.data));
        values.push(value);
        opts.onData?.(value);
      }
    } catch (err) {
      if (err instanceof DokployError) throw err;
      throw this.#transportError(procedure, err, opts.timeoutMs);
    }
    this.#log.debug(`SSE /api/trpc/${procedure} → ${values.length} events`);
    return values;
  }

  async #call<T>(
    procedure: string,
    method: "GET" | "POST",
    suffix: string,
    body: string | undefined,
    opts: CallOptions,
  ): Promise<T> {
    let outageSince: number | undefined;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#once<T>(procedure, method, suffix, body, opts);
      } catch (err) {
        const kind = opts.idempotent ? retryKind(err) : "final";
        if (kind === "final" || this.#signal?.aborted) throw err;
        const dokployErr = err as DokployError;
        // Exponential backoff with jitter: ~250 ms, 500 ms, 1 s … capped at 4 s.
        let delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        if (kind === "outage") {
          if (outageSince === undefined) this.outages++;
          outageSince ??= this.#now();
          const left = outageSince + this.#retryWindowMs - this.#now();
          if (left <= 0) throw this.#gaveUp(dokployErr, outageSince);
          this.#announceOutage(dokployErr, opts.timeoutMs ?? this.#timeoutMs);
          delay = Math.min(delay, left);
        } else if (attempt >= this.#attempts) {
          throw err;
        }
        this.#log.debug(`${procedure}: ${dokployErr.message}; retry ${attempt}`);
        await this.#sleep(delay);
      }
    }
  }

  #announceOutage(err: DokployError, timeoutMs: number): void {
    if (this.#outageAnnounced) return;
    this.#outageAnnounced = true;
    const reason = err.transport ? transportReason(err.cause, timeoutMs) : `HTTP ${err.status}`;
    this.#log.warn(
      `Dokploy at ${this.baseUrl} is unavailable (${reason}); retrying for up to ${
        Math.round(this.#retryWindowMs / 1000)
      }s`,
    );
  }

  /** The last error, saying how long we waited and which option waits longer. */
  #gaveUp(err: DokployError, since: number): DokployError {
    if (this.#retryWindowMs === 0) return err;
    const waited = Math.round((this.#now() - since) / 1000);
    return new DokployError(
      `${err.message} (still failing after ${waited}s of retries; raise DOKPLOY_RETRY_WINDOW to wait longer)`,
      err.procedure,
      err.status,
      { cause: err.cause },
    );
  }

  async #once<T>(
    procedure: string,
    method: "GET" | "POST",
    suffix: string,
    body: string | undefined,
    { timeoutMs = this.#timeoutMs, idempotent: repeatable = false }: CallOptions,
  ): Promise<T> {
    const url = `${this.baseUrl}/api/${procedure}${suffix}`;
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (this.#signal) signals.push(this.#signal);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#auth === "bearer") headers.authorization = `Bearer ${this.#token}`;
    else headers["x-api-key"] = this.#token;
    if (body !== undefined) headers["content-type"] = "application/json";
    const started = performance.now();
    this.requestCount++;
    let res: Response;
    let text: string;
    // A mutation not safe to repeat gets a connection of its own: the HTTP stack silently
    // resends a request whose pooled (reused) connection closed unanswered, which for
    // compose.create meant two services.
    const ownConnection = method === "POST" && !repeatable
      ? Deno.createHttpClient({ poolMaxIdlePerHost: 0 })
      : undefined;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        body,
        signal: AbortSignal.any(signals),
        client: ownConnection,
      });
      text = await res.text();
    } catch (err) {
      throw this.#transportError(procedure, err, timeoutMs);
    } finally {
      ownConnection?.close();
    }
    this.#log.debug(
      `${method} /api/${procedure} → ${res.status} ${text.length}B ${
        Math.round(performance.now() - started)
      }ms`,
    );
    if (res.ok) return parseBody<T>(text);
    throw httpError(procedure, res.status, text);
  }

  #transportError(procedure: string, err: unknown, timeoutMs: number): DokployError {
    if (this.#signal?.aborted) {
      return new DokployError(`${procedure}: interrupted`, procedure, undefined, { cause: err });
    }
    return new DokployError(
      `cannot reach Dokploy at ${this.baseUrl} (${procedure}: ${
        transportReason(err, timeoutMs)
      }); check DOKPLOY_SERVER_URL and that the server is up`,
      procedure,
      undefined,
      { cause: err },
    );
  }
}

/** Why a request got no HTTP answer, in a few words (never the token). */
function transportReason(err: unknown, timeoutMs: number): string {
  const timedOut = err instanceof DOMException && err.name === "TimeoutError";
  return timedOut
    ? `no answer within ${Math.round(timeoutMs / 1000)}s`
    : redact(String((err as Error)?.message ?? err)).split("\n")[0];
}

/** One event of a `text/event-stream` body: its type (default "message") and its data lines. */
export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ type: string; data: string }> {
  let buffer = "";
  let type = "message";
  let data: string[] = [];
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer[nl] === "\r" ? 2 : 1));
      if (line === "") {
        if (data.length || type !== "message") yield { type, data: data.join("\n") };
        type = "message";
        data = [];
      } else if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      // id:, retry: and comments (":") carry nothing we use.
    }
  }
  if (data.length) yield { type, data: data.join("\n") };
}

/** tRPC's superjson envelope `{json: v}` (and `{json, meta}`) around each value. */
function unwrapSuperjson(v: unknown): unknown {
  return v !== null && typeof v === "object" && "json" in v ? (v as { json: unknown }).json : v;
}

/** Empty 200 bodies are normal for some procedures; a bare string comes JSON-quoted. */
function parseBody<T>(text: string): T {
  if (text.trim() === "") return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

interface ErrorBody {
  message?: string;
  issues?: { path?: (string | number)[]; message?: string }[];
}

/** Maps an HTTP error to one actionable line (status, procedure, field-by-field issues). */
export function httpError(procedure: string, status: number, text: string): DokployError {
  let body: ErrorBody = {};
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    body = { message: text.slice(0, 200) };
  }
  const serverMessage = redact(String(body.message ?? "").split("\n")[0]).slice(0, 300);
  let message: string;
  switch (status) {
    case 400: {
      const fields = (body.issues ?? [])
        .map((i) => `${(i.path ?? []).join(".") || "(input)"}: ${redact(String(i.message))}`)
        .join("; ");
      message = `Dokploy refused ${procedure} (400 ${serverMessage || "bad request"})${
        fields ? `: ${fields}` : ""
      }`;
      break;
    }
    case 401:
      // Dokploy answers a member's refused access with 401 too, but with its reason.
      message = serverMessage && serverMessage !== "Unauthorized"
        ? `Dokploy refused ${procedure} for this API key's user (401 ${serverMessage}); a Dokploy owner/admin can grant it (Settings > Users > permissions), see the README's Teams section`
        : `Dokploy rejected the API key (401 on ${procedure}); check DOKPLOY_API_TOKEN: create a key in Dokploy under Settings > Profile > API/CLI`;
      break;
    case 403:
      message =
        `the API key may not call ${procedure} (403 ${serverMessage}); use a key of an owner/admin or grant this member access to the project`;
      break;
    case 404:
      message = serverMessage === "Not found"
        ? `Dokploy has no procedure ${procedure} (404); the server is probably older than this provider supports`
        : `${procedure}: ${serverMessage || "not found"} (404)`;
      break;
    default:
      message = `Dokploy failed on ${procedure} (${status}${
        serverMessage ? `: ${serverMessage}` : ""
      })`;
  }
  return new DokployError(message, procedure, status);
}

/** True when `err` is Dokploy saying the object does not exist (not a missing route). */
export function isNotFound(err: unknown): boolean {
  return err instanceof DokployError && err.status === 404 &&
    !err.message.startsWith("Dokploy has no procedure");
}
