/**
 * A cache whose deploy failed (issue 18): the failure, its reason and when it is retried,
 * kept in the cache's own description after its marker, so every create sees it in the
 * project snapshot it reads anyway and skips the cache without a call of its own.
 *
 * Retries back off: 30 min after the failure, then 1 h, 2 h, and every 4 h from then on.
 * A pull failure is a wrong IMAGE_CACHE_IMAGE (never heals: the fix is the user's, and
 * `doctor --fix` retries at once), Docker Hub's anonymous rate limit (counted per hour)
 * or a server without a route out (minutes to hours). 30 min rides out the short ones;
 * doubling keeps a cause that stays to about six failed deploys a day on the server's
 * one-at-a-time queue; 4 h still picks up a healed network within half a working day.
 */

export interface CacheFailure {
  /** Failed deploys in a row (a retry counts as failed until it is seen to succeed). */
  attempts: number;
  /** When the last attempt failed or was made (Dokploy's clock). */
  failedAt: string;
  /** The first create whose machine Dokploy made at or after this retries (Dokploy's clock). */
  retryAt: string;
  /** The deploy log's meaningful line, e.g. the pull error. */
  reason: string;
}

/** What the user can do about a failed cache: said wherever one is reported. */
export const FIX_HINT =
  "fix its cause (IMAGE_CACHE_IMAGE, or the server's route to Docker Hub), then run 'devpod-provider-dokploy doctor --fix' to retry now or 'cleanup --yes' to remove it";

const FIRST_RETRY_MS = 30 * 60_000;
const MAX_RETRY_MS = 4 * 60 * 60_000;
/** Kept short: it is shown in every warning and in Dokploy's service list. */
const MAX_REASON = 240;

export function retryDelayMs(attempts: number): number {
  return Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1), MAX_RETRY_MS);
}

/**
 * The record of the `attempts`-th failure in a row, seen at `failedAt`. The back-off
 * counts from `seenAt` when later (the machine of the run that records it): a failure
 * found long after it happened must not date the retry before machines that exist.
 */
export function failureAt(
  attempts: number,
  failedAt: string,
  reason: string,
  seenAt?: string | null,
): CacheFailure {
  const at = Date.parse(failedAt);
  const from = Math.max(at, Date.parse(seenAt ?? "") || at);
  return {
    attempts,
    failedAt: new Date(at).toISOString(),
    retryAt: new Date(from + retryDelayMs(attempts)).toISOString(),
    reason: oneLine(reason),
  };
}

const TAG =
  /\[devpod-image-cache-failed;attempts=(\d+);at=([0-9T:.Z-]+);retry=([0-9T:.Z-]+)\] last deploy failed: (.*)$/s;

/** The text after the marker in the cache's description. */
export function renderFailure(f: CacheFailure): string {
  return `[devpod-image-cache-failed;attempts=${f.attempts};at=${f.failedAt};retry=${f.retryAt}] last deploy failed: ${f.reason}`;
}

export function parseFailure(description: string | null | undefined): CacheFailure | null {
  const m = description ? TAG.exec(description) : null;
  if (!m || Number.isNaN(Date.parse(m[2])) || Number.isNaN(Date.parse(m[3]))) return null;
  return { attempts: Number(m[1]), failedAt: m[2], retryAt: m[3], reason: m[4] };
}

/** Colour codes compose writes into the log (read to strip them; we never write any). */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
/** Dokploy's own closing lines say only that something failed. */
const CLOSING = /❌|^Error occurred/;
const TELLING =
  /error|denied|toomanyrequests|rate limit|timeout|timed out|no such host|refused|unreachable|not found|manifest unknown|no route/i;

/**
 * The line of a failed deploy's log that says why: the last one that reads like an error,
 * Dokploy's closing lines left out; else Dokploy's errorMessage (a deploy that never got
 * a log: its server was unreachable).
 */
export function reasonFromLog(log: string, errorMessage?: string | null): string {
  const lines = log.split("\n").map((l) => l.replace(ANSI_COLOUR, "").trim())
    .filter((l) => l && !CLOSING.test(l));
  const line = lines.findLast((l) => TELLING.test(l)) ?? errorMessage ?? lines.at(-1);
  return oneLine(line || "Dokploy kept no deploy log");
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > MAX_REASON ? `${flat.slice(0, MAX_REASON - 1)}…` : flat;
}

/** `2026-12-01 10:30 UTC`. */
export function utcMinute(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** `in 23 min`, `in 2.5 h`, or `now` once due (the local clock: only for people to read). */
export function retryIn(retryAt: string, now = Date.now()): string {
  const min = Math.ceil((Date.parse(retryAt) - now) / 60_000);
  if (min <= 0) return "now";
  return min < 90 ? `in ${min} min` : `in ${(min / 60).toFixed(1)} h`;
}
