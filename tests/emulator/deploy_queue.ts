/**
 * Dokploy's in-memory deployment queue: one queue per server (the Dokploy host is one
 * "server" too), each running one job at a time (buildsConcurrency = 1).
 *
 * The queue lives in Dokploy's process memory, so a Dokploy restart forgets it:
 * `abandon()` drops every queued and running job at once (their `lost` signal fires)
 * and the queues start empty, as a freshly started Dokploy does.
 */

export type DeployJob = (lost: AbortSignal) => Promise<void>;

/** One Dokploy process lifetime's worth of queue state. */
interface Generation {
  tails: Map<string, Promise<void>>;
  pending: number;
  lost: AbortController;
}

export class DeployQueues {
  #gen: Generation = newGeneration();
  #idleWaiters: (() => void)[] = [];
  /** Every job's promise, abandoned ones included, so close() can let them settle. */
  #inFlight = new Set<Promise<void>>();

  /** Runs `job` after every job queued before it on the same key. */
  enqueue(key: string, job: DeployJob): void {
    const gen = this.#gen;
    gen.pending++;
    const prev = gen.tails.get(key) ?? Promise.resolve();
    // A job still queued when its Dokploy died never starts.
    const tail = prev.then(() => gen.lost.signal.aborted ? undefined : job(gen.lost.signal))
      .catch(() => {})
      .finally(() => {
        this.#inFlight.delete(tail);
        if (gen.tails.get(key) === tail) gen.tails.delete(key);
        if (--gen.pending === 0 && gen === this.#gen) this.#wakeIdle();
      });
    gen.tails.set(key, tail);
    this.#inFlight.add(tail);
  }

  get pending(): number {
    return this.#gen.pending;
  }

  /** Forgets every queued and running job (a Dokploy restart); returns how many. */
  abandon(): number {
    const gen = this.#gen;
    gen.lost.abort();
    this.#gen = newGeneration();
    this.#wakeIdle();
    return gen.pending;
  }

  /** Resolves when no job is queued or running; rejects after `timeoutMs`. */
  waitIdle(timeoutMs = 30_000): Promise<void> {
    if (this.#gen.pending === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        reject(new Error(`deploy queues still busy after ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#idleWaiters.push(done);
    });
  }

  /** Waits (bounded) until every job, abandoned ones included, has returned. */
  async settle(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => timer = setTimeout(r, timeoutMs));
    await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
    clearTimeout(timer);
  }

  #wakeIdle() {
    this.#idleWaiters.splice(0).forEach((w) => w());
  }
}

function newGeneration(): Generation {
  return { tails: new Map(), pending: 0, lost: new AbortController() };
}
