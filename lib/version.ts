/** The provider's version, from deno.json (embedded by `deno compile`). */
import meta from "../deno.json" with { type: "json" };

export const PROVIDER_VERSION = `v${meta.version}`;
