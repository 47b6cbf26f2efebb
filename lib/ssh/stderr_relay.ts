/**
 * Relays ssh's stderr to ours (DevPod logs it) while keeping its last lines, so the
 * caller can tell why ssh failed. Whole lines are passed on byte for byte, except
 * OpenSSH's advice to remove the pinned host key (see host_key.ts).
 */
import { isUnpinAdvice } from "./host_key.ts";

/** A line longer than this is passed on as it is: no advice line is that long. */
const MAX_LINE = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Copies `source` to `write` line by line until EOF, or until `stop` is aborted (the
 * rest is dropped); resolves with its last `keepChars`.
 */
export async function relayStderr(
  source: ReadableStream<Uint8Array>,
  write: (bytes: Uint8Array) => void,
  keepChars = 4096,
  stop?: AbortSignal,
): Promise<string> {
  const decoder = new TextDecoder();
  let tail = "";
  let pending = new Uint8Array(0);
  const emit = (line: Uint8Array) => {
    const text = decoder.decode(line);
    tail = (tail + text).slice(-keepChars);
    if (!isUnpinAdvice(text)) write(line);
  };
  const reader = source.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  if (stop?.aborted) cancel();
  stop?.addEventListener("abort", cancel, { once: true });
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      const buf = pending.length ? concat(pending, r.value) : r.value;
      let start = 0;
      for (let nl = buf.indexOf(NEWLINE); nl !== -1; nl = buf.indexOf(NEWLINE, start)) {
        emit(buf.subarray(start, nl + 1));
        start = nl + 1;
      }
      pending = buf.slice(start);
      if (pending.length > MAX_LINE) {
        emit(pending);
        pending = new Uint8Array(0);
      }
    }
  } finally {
    stop?.removeEventListener("abort", cancel);
  }
  if (pending.length) emit(pending);
  return tail;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
