/**
 * Transport to the Dokploy API (dokploy-api.md §1–2): `x-api-key` auth, queries as
 * GET with flat params, mutations as POST JSON, empty 200 bodies, per-request
 * timeouts, retries with backoff and jitter for idempotent calls only, and one
 * error mapping that never lets the token through.
 */
import { DokployError } from "../errors.ts";
import { type Logger, redact, registerSecret, silentLogger } from "../log.ts";

export type QueryParams = Record<string, string | number | boolean | null | undefined>;

export interface ClientOptions {
  baseUrl: string;
  token: string;
  /** Per-request timeout; long synchronous calls pass their own. */
  timeoutMs?: number;
  /** Attempts for idempotent calls (1 = no retry). */
  attempts?: number;
  log?: Logger;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Aborts every request (Ctrl-C). */
  signal?: AbortSignal;
  /** Auth header style; only `init`'s version probe uses "bearer" to name old servers. */
  auth?: "x-api-key" | "bearer";
}

export interface CallOptions {
  /** Safe to repeat: retried on transport errors and 5xx. */
  idempotent?: boolean;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const RETRYABLE_STATUS = new Set([500, 502, 503, 504, 429]);

export class DokployClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #log: Logger;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #signal?: AbortSignal;
  readonly #auth: "x-api-key" | "bearer";
  /** Number of HTTP requests sent (the bench and tests count calls). */
  requestCount = 0;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#token = opts.token;
    registerSecret(opts.token);
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#attempts = Math.max(1, opts.attempts ?? 4);
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
      if (v !== undefined && v !== null) qs.set(k, String(v));
    }
    const suffix = qs.size ? `?${qs}` : "";
    return this.#call<T>(procedure, "GET", suffix, undefined, { idempotent: true, ...opts });
  }

  /** A tRPC mutation: POST JSON. Retried only when the caller says it is idempotent. */
  mutate<T>(procedure: string, body: unknown, opts: CallOptions = {}): Promise<T> {
    return this.#call<T>(procedure, "POST", "", JSON.stringify(body), opts);
  }

  async #call<T>(
    procedure: string,
    method: "GET" | "POST",
    suffix: string,
    body: string | undefined,
    opts: CallOptions,
  ): Promise<T> {
    const attempts = opts.idempotent ? this.#attempts : 1;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#once<T>(procedure, method, suffix, body, opts.timeoutMs);
      } catch (err) {
        const retryable = err instanceof DokployError &&
          (err.status === undefined || RETRYABLE_STATUS.has(err.status));
        if (!retryable || attempt >= attempts || this.#signal?.aborted) throw err;
        // Exponential backoff with full jitter: 250 ms, 500 ms, 1 s … capped at 4 s.
        const delay = Math.random() * Math.min(4000, 250 * 2 ** (attempt - 1));
        this.#log.debug(`${procedure}: ${err.message}; retry ${attempt}/${attempts - 1}`);
        await this.#sleep(delay);
      }
    }
  }

  async #once<T>(
    procedure: string,
    method: "GET" | "POST",
    suffix: string,
    body: string | undefined,
    timeoutMs = this.#timeoutMs,
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
    try {
      res = await this.#fetch(url, { method, headers, body, signal: AbortSignal.any(signals) });
      text = await res.text();
    } catch (err) {
      throw this.#transportError(procedure, err, timeoutMs);
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
    const timedOut = err instanceof DOMException && err.name === "TimeoutError";
    const reason = timedOut
      ? `no answer within ${Math.round(timeoutMs / 1000)}s`
      : redact(String((err as Error)?.message ?? err)).split("\n")[0];
    return new DokployError(
      `cannot reach Dokploy at ${this.baseUrl} (${procedure}: ${reason}); check DOKPLOY_SERVER_URL and that the server is up`,
      procedure,
      undefined,
      { cause: err },
    );
  }
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
      message =
        `Dokploy rejected the API key (401 on ${procedure}); check DOKPLOY_API_TOKEN: create a key in Dokploy under Settings > Profile > API/CLI`;
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
