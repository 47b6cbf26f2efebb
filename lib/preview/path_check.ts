/**
 * doctor's check of each preview's path (issue 26). Containers that run prove nothing:
 * a forwarder that cannot find the machine, or that the relay does not recognise, runs
 * all the same and every URL fails. So from inside the machine (over SSH, as `command`
 * reaches it) one request goes to the forwarder on each previewed port, which hands it
 * to the machine's relay: the hops Traefik's requests take, past Traefik (whose basic
 * auth wants a password only the user has). The probe is the relay's own script
 * (machine/preview_relay.pl, role `probe`): the same bounded name lookup as the relay.
 */
import RELAY from "../../machine/preview_relay.pl" with { type: "text" };
import type { SshTarget } from "../ssh/argv.ts";
import { sshRun } from "../ssh/ready.ts";
import { serviceAddress } from "./forwarder.ts";

export interface PathResult {
  ok: boolean;
  detail: string;
}

const REDEPLOY =
  "devpod stop, then devpod up <workspace> (deploys the machine and its forwarder again)";

/** The remote command: the probe of `ports` through `appName`'s forwarder. */
export function probeCommand(appName: string, ports: number[]): string {
  return ["perl", "-e", RELAY, "probe", serviceAddress("preview", appName), ...ports.map(String)]
    .map(shellWord).join(" ");
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_.:\/=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The probe's lines read into one verdict per port (a port it did not report: failed). */
export function readProbe(output: string, ports: number[]): Map<number, PathResult> {
  const lines = new Map<number, [string, string]>();
  for (const line of output.split("\n")) {
    const m = /^(\d{1,5}) (\S+) ?(.*)$/.exec(line.trim());
    if (m) lines.set(Number(m[1]), [m[2], m[3]]);
  }
  return new Map(ports.map((port) => {
    const [outcome, detail] = lines.get(port) ?? ["missing", ""];
    return [port, verdict(port, outcome, detail)];
  }));
}

function verdict(port: number, outcome: string, detail: string): PathResult {
  const fail = (what: string): PathResult => ({ ok: false, detail: `${what}; ${REDEPLOY}` });
  switch (outcome) {
    case "http":
      return {
        ok: true,
        detail: `the forwarder reaches the relay, the app answers (HTTP ${detail})`,
      };
    case "devpod":
      if (/nothing answers on port/.test(detail)) {
        return {
          ok: true,
          detail: `the forwarder reaches the relay; nothing listens on port ${port} in the ` +
            `devcontainer yet (the app must listen on 0.0.0.0:${port})`,
        };
      }
      if (/relay refused/.test(detail)) {
        return fail(`the machine's relay refuses its forwarder (${trimmed(detail)})`);
      }
      return fail(`the forwarder cannot reach the machine's relay (${trimmed(detail)})`);
    case "unresolved":
      return fail(`no forwarder on the machine's network (${detail} has no address)`);
    case "closed":
      return fail(`the forwarder does not take connections on port ${port} (${detail})`);
    case "silent":
      return fail(
        "a request through the forwarder got no answer (a relay from before this provider version refuses silently)",
      );
    default:
      return fail("the probe said nothing about this port");
  }
}

/** The relay's or forwarder's 502 text, without its advice to a browser's user. */
function trimmed(text: string): string {
  const why = /\[([^\]]*)\]$/.exec(text)?.[1];
  return why ?? text.replace(/^devpod preview: /, "").replace(/ \(devpod stop.*$/, "");
}

/** Runs the probe over a fresh SSH connection; throws with ssh's last line when it fails. */
export async function probePaths(
  target: SshTarget,
  appName: string,
  ports: number[],
  // Per port at worst: the forwarder's 10 s connect to the relay, and lookups of 2 s.
  totalSec = 15 + 15 * ports.length,
): Promise<Map<number, PathResult>> {
  const out = await sshRun(target, 10, probeCommand(appName, ports), { totalSec })
    .catch((err) => {
      throw new Error(err?.name === "AbortError" ? `no answer within ${totalSec}s` : String(err));
    });
  if (!out.ok) {
    throw new Error(out.stderr.trim().split("\n").pop() || "ssh failed");
  }
  return readProbe(out.stdout, ports);
}
