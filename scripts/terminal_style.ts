/**
 * Bold and dim for the scripts' human output, only where a terminal shows them: never
 * with NO_COLOR set (https://no-color.org) or when the stream is a pipe or a file,
 * where escape codes are noise. Every coloured line in scripts/ goes through here.
 */

export interface TextStyle {
  bold(text: string): string;
  dim(text: string): string;
}

/** Whether to colour: a terminal, and NO_COLOR unset or empty. */
export function wantsColour(noColor: string | undefined, isTerminal: boolean): boolean {
  return isTerminal && !noColor;
}

export function textStyle(colour: boolean): TextStyle {
  const wrap = (code: number) => (text: string) => colour ? `\x1b[${code}m${text}\x1b[0m` : text;
  return { bold: wrap(1), dim: wrap(2) };
}

/** The style for text written to `stream` by this process. */
export function styleFor(stream: { isTerminal(): boolean }): TextStyle {
  return textStyle(wantsColour(Deno.env.get("NO_COLOR"), stream.isTerminal()));
}
