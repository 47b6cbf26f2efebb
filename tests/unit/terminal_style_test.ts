import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { styleFor, textStyle, wantsColour } from "../../scripts/terminal_style.ts";
import { hasTool } from "../machine/harness.ts";

const ESC = "\x1b";
/** How escape codes are spelled in source: escaped, or the raw character. */
const ESCAPES = ["\\x1b", "\\u001b", "\\033", ESC];
const STYLE_MODULE = fileURLToPath(new URL("../../scripts/terminal_style.ts", import.meta.url));

Deno.test("colour only on a terminal, and never with NO_COLOR", () => {
  assert.equal(wantsColour(undefined, true), true);
  assert.equal(wantsColour("", true), true, "an empty NO_COLOR does not count (no-color.org)");
  assert.equal(wantsColour("1", true), false);
  assert.equal(wantsColour(undefined, false), false, "a pipe or a file");
  const plain = textStyle(false);
  assert.equal(plain.bold("demo") + plain.dim(" 1.2s"), "demo 1.2s");
  assert.equal(textStyle(true).bold("demo"), "\x1b[1mdemo\x1b[0m");
  assert.equal(styleFor({ isTerminal: () => false }).bold("x"), "x");
});

/** The demo's styled text as `deno task demo` prints it: into a pipe, or onto a terminal. */
async function demoLine(noColor: string, onTerminal: boolean): Promise<string> {
  const program = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    program,
    `import { styleFor } from "${STYLE_MODULE}";
const { bold, dim } = styleFor(Deno.stdout);
console.log(bold("summary") + dim(" 1.20s"));`,
  );
  const run = [Deno.execPath(), "run", "--allow-env", program];
  try {
    // util-linux `script` gives the program a pseudo-terminal as its stdout.
    const [cmd, ...args] = onTerminal
      ? ["script", "-qec", run.map((a) => `'${a}'`).join(" "), "/dev/null"]
      : run;
    const out = await new Deno.Command(cmd, {
      args,
      env: { NO_COLOR: noColor },
      stdin: "null",
      stdout: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout).replace(/\r\n/g, "\n");
  } finally {
    await Deno.remove(program);
  }
}

Deno.test("into a pipe, with or without NO_COLOR, the demo prints no escape codes", async () => {
  assert.equal(await demoLine("", false), "summary 1.20s\n");
  assert.equal(await demoLine("1", false), "summary 1.20s\n");
});

Deno.test({
  name: "on a terminal the demo is in colour unless NO_COLOR is set",
  ignore: !(await hasTool("script")),
  async fn() {
    assert.ok((await demoLine("", true)).startsWith(`${ESC}[1msummary`));
    assert.equal(await demoLine("1", true), "summary 1.20s\n");
  },
});

Deno.test("nothing in lib/, commands/ or scripts/ writes escape codes but the style module", async () => {
  const offenders: string[] = [];
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${root}${dir}`)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (path.endsWith(".ts") && `${root}${path}` !== STYLE_MODULE) {
        const source = await Deno.readTextFile(`${root}${path}`);
        if (ESCAPES.some((e) => source.includes(e))) offenders.push(path);
      }
    }
  };
  for (const dir of ["lib", "commands", "scripts"]) await walk(dir);
  assert.deepEqual(offenders, [], "colour through scripts/terminal_style.ts");
});
