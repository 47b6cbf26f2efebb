/** Fault injection: per-procedure rules consulted before normal request handling. */

export interface FaultRule {
  /** Procedure such as "compose.deploy" (case-insensitive), or "*" for every call. */
  procedure: string;
  /** Answer with this status instead of handling the call. */
  status?: number;
  /** Body for `status` (JSON); defaults to a Dokploy-style error object. */
  body?: unknown;
  /** Wait this long first; alone, the call is then handled normally (a slow server). */
  delayMs?: number;
  /** Close the TCP connection without any answer (the call is not handled). */
  drop?: boolean;
  /**
   * Handle the call fully (its effects happen), then close the connection without
   * answering: the client cannot tell whether it took effect.
   */
  dropAfter?: boolean;
  /** How many calls this rule applies to; default 1, Infinity allowed. */
  times?: number;
  /**
   * Called when a call matches, before anything else: pins a moment in a client's run
   * (with `delayMs`, e.g. to restart the emulator while this call is in flight).
   */
  onMatch?: (procedure: string) => void;
}

export class FaultController {
  #rules: { rule: FaultRule; left: number }[] = [];

  add(rule: FaultRule): void {
    this.#rules.push({ rule: { ...rule }, left: rule.times ?? 1 });
  }

  clear(): void {
    this.#rules = [];
  }

  /** The first live rule matching `procedure`, consuming one use of it. */
  take(procedure: string): FaultRule | undefined {
    const name = procedure.toLowerCase();
    const entry = this.#rules.find(({ rule, left }) =>
      left > 0 && (rule.procedure === "*" || rule.procedure.toLowerCase() === name)
    );
    if (!entry) return undefined;
    entry.left--;
    if (entry.left <= 0) this.#rules = this.#rules.filter((e) => e !== entry);
    entry.rule.onMatch?.(procedure);
    return entry.rule;
  }
}
