/**
 * Builds (once) the cached Debian root fs used by tests/machine/bootstrap_test.ts.
 * Run by CI before the tests so the first test run does not pay for debootstrap:
 *
 *     deno run -A scripts/rootfs.ts
 */
import { ensureRootfs } from "../tests/machine/rootfs.ts";

if (import.meta.main) {
  console.log(await ensureRootfs());
}
