/**
 * The host runtime's stand-in `docker` CLI (see host_docker.ts): sends its argv to the
 * emulator over DOKPLOY_EMULATOR_DOCKER (a unix socket) and prints the answer, or runs
 * what `docker run` maps to with its own stdio and exits with that command's code.
 * Standalone on purpose (no imports): it starts once per docker call.
 */
const socket = Deno.env.get("DOKPLOY_EMULATOR_DOCKER") ?? "";
const server = Deno.env.get("DOKPLOY_EMULATOR_SERVER") ?? "dokploy-host";
const enc = new TextEncoder();

let reply: { code: number; stdout: string; stderr: string } | { exec: string[] };
try {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const data = enc.encode(`${JSON.stringify({ argv: Deno.args, server })}\n`);
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
  let text = "";
  const buf = new Uint8Array(64 * 1024);
  const dec = new TextDecoder();
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n), { stream: true });
  }
  conn.close();
  reply = JSON.parse(text);
} catch {
  reply = {
    code: 1,
    stdout: "",
    stderr:
      `Cannot connect to the Docker daemon at unix://${socket}. Is the docker daemon running?\n`,
  };
}

if ("exec" in reply) {
  const [cmd, ...args] = reply.exec;
  const status = await new Deno.Command(cmd, { args, stdin: "inherit" }).spawn().status;
  Deno.exit(status.signal ? 128 + signalNumber(status.signal) : status.code);
} else {
  if (reply.stdout) await Deno.stdout.write(enc.encode(reply.stdout));
  if (reply.stderr) await Deno.stderr.write(enc.encode(reply.stderr));
  Deno.exit(reply.code);
}

function signalNumber(signal: Deno.Signal): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGPIPE: 13 };
  return numbers[signal] ?? 15;
}
