/**
 * The stderr logger. Nothing in lib/ writes to stdout: DevPod parses stdout of
 * `status` and tunnels stdout of `command`. Every line passes through `redact`, so a
 * registered secret (the API token) can never reach the terminal or DevPod's log.
 */

const secrets = new Set<string>();

/** Marks a value as secret: it is replaced by `***` in everything the logger writes. */
export function registerSecret(value: string | null | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

/** Replaces every registered secret in `text`. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("***");
  return out;
}

export interface Logger {
  /** A progress line for humans (DevPod shows it in its log). */
  info(message: string): void;
  warn(message: string): void;
  /** Only with the CLI's --debug (DEVPOD_DEBUG / DEVSY_DEBUG): HTTP traces, timings. */
  debug(message: string): void;
  readonly debugEnabled: boolean;
}

const encoder = new TextEncoder();

export function createLogger(
  { debug = false, write = (s: string) => Deno.stderr.writeSync(encoder.encode(s)) }: {
    debug?: boolean;
    write?: (text: string) => void;
  } = {},
): Logger {
  const emit = (prefix: string, message: string) => {
    try {
      write(redact(`${prefix}${message}\n`));
    } catch {
      // stderr closed (DevPod gone): nothing useful left to do with a log line.
    }
  };
  return {
    debugEnabled: debug,
    info: (m) => emit("[dokploy] ", m),
    warn: (m) => emit("[dokploy] warning: ", m),
    debug: (m) => debug && emit("[dokploy:debug] ", m),
  };
}

/** A logger that drops everything (tests, quiet helpers). */
export const silentLogger: Logger = {
  debugEnabled: false,
  info() {},
  warn() {},
  debug() {},
};

/**
 * Holds info and warning lines back until `flush()`; debug lines pass at once. For
 * `status`: the maintained DevPod fork copies its stderr into the user's log on every
 * poll, v0.6.15 shows it only on failure, so a successful answer says nothing and a
 * failure still carries what happened on the way (e.g. the outage notice).
 */
export function holdBack(inner: Logger): { logger: Logger; flush(): void } {
  const held: (() => void)[] = [];
  return {
    logger: {
      debugEnabled: inner.debugEnabled,
      info: (m) => void held.push(() => inner.info(m)),
      warn: (m) => void held.push(() => inner.warn(m)),
      debug: (m) => inner.debug(m),
    },
    flush() {
      for (const line of held.splice(0)) line();
    },
  };
}
