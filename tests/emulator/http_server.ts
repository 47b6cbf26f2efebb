/**
 * A minimal HTTP/1.1 server on a raw TCP listener. `Deno.serve` cannot abort a
 * connection without answering, and fault injection needs exactly that ("drop"):
 * here a handler may return DROP and the socket is closed with no response.
 * close() drops every open connection, answered or not (a server process dying), and
 * tells handlers still at work through `HttpRequest.closed`.
 */

export const DROP = Symbol("drop");

export interface HttpRequest {
  method: string;
  /** Path without the query string, e.g. "/api/compose.one". */
  path: string;
  query: URLSearchParams;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: Uint8Array;
  /** Aborted when the server closes while this request is being handled. */
  closed: AbortSignal;
}

export interface HttpReply {
  status: number;
  contentType?: string;
  /** Empty string = empty body (Dokploy's "void" procedures). */
  body: string;
  /** Extra response headers (names lower-case). */
  headers?: Record<string, string>;
  /**
   * A streamed body instead of `body` (chunked, as node sends one of unknown length):
   * each piece is written as it comes; the stream stops when the client goes away.
   */
  stream?: AsyncIterable<string>;
}

export type HttpHandler = (req: HttpRequest) => Promise<HttpReply | typeof DROP>;

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

const MAX_HEAD = 64 * 1024;
const MAX_BODY = 32 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export function serveHttp(
  opts: { hostname: string; port: number },
  handler: HttpHandler,
): HttpServer {
  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const closing = new AbortController();
  let closed = false;

  const acceptLoop = (async () => {
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        break; // listener closed
      }
      conns.add(conn);
      const task = serveConn(conn, handler, closing.signal).finally(() => {
        conns.delete(conn);
        tasks.delete(task);
      });
      tasks.add(task);
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: () =>
      stopped ??= (async () => {
        closed = true;
        closing.abort();
        listener.close();
        for (const c of conns) safeClose(c);
        await acceptLoop;
        await Promise.allSettled([...tasks]);
      })(),
  };
}

function safeClose(conn: Deno.Conn) {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function serveConn(
  conn: Deno.Conn,
  handler: HttpHandler,
  closed: AbortSignal,
): Promise<void> {
  const reader = new ConnReader(conn);
  try {
    while (true) {
      const head = await reader.readHead();
      if (head === null) return;
      const req = parseHead(head, closed);
      if (!req) {
        await writeAll(conn, renderReply({ status: 400, body: "Bad Request" }, false));
        return;
      }
      if (req.headers["expect"]?.toLowerCase() === "100-continue") {
        await writeAll(conn, encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
      }
      req.body = await readBody(reader, req.headers);
      const reply = await handler(req);
      if (reply === DROP) return;
      const keepAlive = (req.headers["connection"] ?? "").toLowerCase() !== "close";
      if (reply.stream) {
        await writeStream(conn, reply, keepAlive, closed);
        if (!keepAlive || closed.aborted) return;
        continue;
      }
      await writeAll(conn, renderReply(reply, keepAlive));
      if (!keepAlive) return;
    }
  } catch {
    // Client went away or sent garbage: nothing to answer.
  } finally {
    safeClose(conn);
  }
}

function parseHead(head: string, closed: AbortSignal): HttpRequest | null {
  const lines = head.split("\r\n");
  const [method, target, version] = lines[0].split(" ");
  if (!method || !target || !version?.startsWith("HTTP/1.")) return null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const url = new URL(target, "http://emulator");
  return {
    method: method.toUpperCase(),
    path: url.pathname,
    query: url.searchParams,
    headers,
    body: new Uint8Array(),
    closed,
  };
}

async function readBody(reader: ConnReader, headers: Record<string, string>): Promise<Uint8Array> {
  if ((headers["transfer-encoding"] ?? "").toLowerCase().includes("chunked")) {
    const parts: Uint8Array[] = [];
    let total = 0;
    while (true) {
      const sizeLine = await reader.readLine();
      const size = parseInt(sizeLine.split(";")[0], 16);
      if (!Number.isFinite(size)) throw new Error("bad chunk size");
      if (size === 0) {
        while ((await reader.readLine()) !== "") { /* skip trailers */ }
        break;
      }
      total += size;
      if (total > MAX_BODY) throw new Error("body too large");
      parts.push(await reader.readExact(size));
      await reader.readLine();
    }
    return concat(parts);
  }
  const length = Number(headers["content-length"] ?? "0");
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_BODY) {
    throw new Error("bad content-length");
  }
  return length ? await reader.readExact(length) : new Uint8Array();
}

function renderHead(reply: HttpReply, keepAlive: boolean, length: string): Uint8Array {
  const head = [
    `HTTP/1.1 ${reply.status} ${REASONS[reply.status] ?? "Status"}`,
    `content-type: ${reply.contentType ?? "application/json"}`,
    length,
    ...Object.entries(reply.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    `date: ${new Date().toUTCString()}`,
    `connection: ${keepAlive ? "keep-alive" : "close"}`,
    "",
    "",
  ].join("\r\n");
  return encoder.encode(head);
}

function renderReply(reply: HttpReply, keepAlive: boolean): Uint8Array {
  const body = encoder.encode(reply.body);
  return concat([renderHead(reply, keepAlive, `content-length: ${body.length}`), body]);
}

/** A chunked body, piece by piece; ends early (unterminated) when the server closes. */
async function writeStream(
  conn: Deno.Conn,
  reply: HttpReply,
  keepAlive: boolean,
  closed: AbortSignal,
) {
  await writeAll(conn, renderHead(reply, keepAlive, "transfer-encoding: chunked"));
  const it = reply.stream![Symbol.asyncIterator]();
  const gone = new Promise<IteratorResult<string>>((resolve) => {
    if (closed.aborted) resolve({ done: true, value: undefined });
    closed.addEventListener("abort", () => resolve({ done: true, value: undefined }), {
      once: true,
    });
  });
  try {
    while (!closed.aborted) {
      const next = await Promise.race([it.next(), gone]);
      if (next.done) break;
      const data = encoder.encode(next.value);
      if (!data.length) continue;
      await writeAll(
        conn,
        concat([encoder.encode(`${data.length.toString(16)}\r\n`), data, encoder.encode("\r\n")]),
      );
    }
    if (!closed.aborted) await writeAll(conn, encoder.encode("0\r\n\r\n"));
  } finally {
    // Not awaited: a generator still waiting for its next value cannot return yet.
    it.return?.().catch(() => {});
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array) {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Buffered reads from a connection: request heads, lines and exact byte counts. */
class ConnReader {
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #conn: Deno.Conn;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    this.#buf = concat([this.#buf, chunk.subarray(0, n)]);
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  #indexOf(seq: number[]): number {
    outer: for (let i = 0; i + seq.length <= this.#buf.length; i++) {
      for (let j = 0; j < seq.length; j++) if (this.#buf[i + j] !== seq[j]) continue outer;
      return i;
    }
    return -1;
  }

  /** The request head up to the blank line, or null on a clean EOF between requests. */
  async readHead(): Promise<string | null> {
    while (true) {
      const end = this.#indexOf([13, 10, 13, 10]);
      if (end >= 0) {
        const head = decoder.decode(this.#take(end));
        this.#take(4);
        return head;
      }
      if (this.#buf.length > MAX_HEAD) throw new Error("head too large");
      if (!(await this.#fill())) {
        if (this.#buf.length) throw new Error("truncated head");
        return null;
      }
    }
  }

  async readLine(): Promise<string> {
    while (true) {
      const end = this.#indexOf([13, 10]);
      if (end >= 0) {
        const line = decoder.decode(this.#take(end));
        this.#take(2);
        return line;
      }
      if (!(await this.#fill())) throw new Error("unexpected EOF");
    }
  }

  async readExact(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) throw new Error("unexpected EOF");
    }
    return this.#take(n);
  }
}
