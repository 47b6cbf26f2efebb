/**
 * The machine bootstrap (`bootstrap.sh`) as text, for the compose file the provider
 * generates. Imported as text so `deno compile` embeds it in the binary.
 */
import script from "./bootstrap.sh" with { type: "text" };

/** The bootstrap's POSIX sh source, unchanged. */
export const BOOTSTRAP_SCRIPT: string = script;

/**
 * The compose `entrypoint` that runs the bootstrap inline as PID 1:
 * `["/bin/sh", "-c", <script>, "devpod-bootstrap"]`.
 *
 * docker compose interpolates `$VAR`/`${VAR}` everywhere in the file, so every `$` of the
 * script is doubled (`$$` is compose's escape for a literal `$`).
 */
export function composeEntrypoint(): string[] {
  return ["/bin/sh", "-c", script.replaceAll("$", () => "$$"), "devpod-bootstrap"];
}
