/**
 * Dokploy's in-memory deployment queue: one queue per server (the Dokploy host is one
 * "server" too), each running one job at a time (buildsConcurrency = 1).
 */

export class DeployQueues {
  #tails = new Map<string, Promise<void>>();
  #pending = 0;
  #idleWaiters: (() => void)[] = [];

  /** Runs `job` after every job queued before it on the same key. */
  enqueue(key: string, job: () => Promise<void>): void {
    this.#pending++;
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const tail = prev.then(job).catch(() => {}).finally(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
      if (--this.#pending === 0) this.#idleWaiters.splice(0).forEach((w) => w());
    });
    this.#tails.set(key, tail);
  }

  get pending(): number {
    return this.#pending;
  }

  /** Resolves when no job is queued or running; rejects after `timeoutMs`. */
  waitIdle(timeoutMs = 30_000): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
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
}
