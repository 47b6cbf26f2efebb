/**
 * The registries we deploy (the image cache, the prebuild store) report their storage
 * size in their container log, the one place Dokploy lets us read it from
 * (compose.readLogs); `list` and `doctor` read the last such line back.
 */

/** A background loop (sh) that logs `<prefix> size <KiB> KiB` whenever `dir`'s size changes. */
export function sizeLoop(prefix: string, dir: string): string {
  return `(
  last=
  while :; do
    size=$(du -sk ${dir} 2>/dev/null | cut -f1)
    if [ -n "$size" ] && [ "$size" != "$last" ]; then
      echo "${prefix} size $size KiB"
      last=$size
    fi
    sleep 10
  done
) &`;
}

/** The last size (KiB) a loop with this prefix logged; null when the log has none. */
export function lastLoggedSizeOf(log: string, prefix: string): number | null {
  let size: number | null = null;
  for (const m of log.matchAll(new RegExp(`${prefix} size (\\d+) KiB`, "g"))) size = Number(m[1]);
  return size;
}
