/**
 * Text that goes into a docker-compose file we render. Shared by every service we
 * deploy (the machine, the image cache), so it lives apart from both.
 */

/** compose treats `$` as interpolation; a script's own `$` must be doubled. */
export function escapeForCompose(text: string): string {
  // A function replacer: in a replacement *string*, "$$" would mean a single "$".
  return text.replaceAll("$", () => "$$");
}
