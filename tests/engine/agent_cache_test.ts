/**
 * The agent cache (issue 24) on a real Docker engine, every verb run as DevPod runs it
 * (`deno run mod.ts <verb>` with DevPod's environment). The first create deploys the
 * server's image cache with its agent cache (nginx, the `front` test image); a stand-in
 * for GitHub's release downloads (tests/engine/agent_upstream.ts) joins the cache's
 * network under the alias AGENT_CACHE_UPSTREAM names.
 *
 * In each machine, DevPod's inject step is reproduced as its script runs it over
 * `command`: `sh -c "curl -fsSL <the CLI's GitHub release URL> -o <AGENT_PATH>.$$"`,
 * the URL a release CLI with no AGENT_URL writes. Machine A gets the agent through the
 * cache (fetched once); the stand-in is stopped; machine B gets it from the cache alone.
 * A release whose bytes are not what its checksums.txt says is refused (the machine
 * falls back to DevPod's own download, which has no route here), and with the agent
 * cache stopped a machine falls back in bounded time.
 */
import assert from "node:assert/strict";
import { releasePath, releaseUrl } from "../../lib/agent/line.ts";
import { AGENT_SERVICE } from "../../lib/agent/spec.ts";
import { runProvider } from "../e2e/harness.ts";
import { ensureEngine } from "./engine.ts";
import { ensureImages } from "./images.ts";
import { fakeAgent, type GithubStandIn, publish, startGithubStandIn } from "./agent_upstream.ts";
import { type EngineWorld, eventually, leftovers, startEngineWorld } from "./world.ts";

const RUN = Deno.pid.toString(36);
const m = (name: string) => `ag-${name}-${RUN}`;
const UPSTREAM_ALIAS = `github-${RUN}`;
const TEST_LABEL = { "dev.devpod.test": `agent-cache-${RUN}` };
const NO_SANITIZE = { sanitizeOps: false, sanitizeResources: false };
const GOOD = { line: "loft-sh", version: "v0.6.15", arch: "amd64" } as const;
const TAMPERED = { line: "devsy", version: "v1.1.0", arch: "amd64" } as const;
const AGENT_PATH = "/home/devpod/.devpod/devpod";

let world: EngineWorld;
const figures = { firstS: NaN, nextS: NaN, refused: false, fallbackS: NaN };

function ok(what: string, r: { code: number; stderr: string }) {
  assert.equal(r.code, 0, `${what} failed:\n${r.stderr}`);
}

/** DevPod's download of its agent, as its inject script runs it; the file's sha256 after. */
async function injectDownload(w: EngineWorld, id: string, url: string) {
  const t = performance.now();
  // The script makes the install directory first, then downloads.
  const command = `mkdir -p ${AGENT_PATH.slice(0, AGENT_PATH.lastIndexOf("/"))} && ` +
    `sh -c "curl -fsSL ${url} -o ${AGENT_PATH}.$$" 2>&1 && ` +
    `sha256sum ${AGENT_PATH}.* | cut -d' ' -f1 && rm -f ${AGENT_PATH}.*`;
  const r = await w.run("command", id, { command, timeoutMs: 180_000 });
  return {
    code: r.code,
    out: r.stdoutText,
    err: r.stderr,
    seconds: (performance.now() - t) / 1000,
  };
}

/** The agent cache's container (its compose project is the cache's appName). */
async function agentCacheContainer(w: EngineWorld, appName: string): Promise<string> {
  const id = (await w.docker([
    "ps",
    "-aq",
    "--filter",
    `label=com.docker.compose.project=${appName}`,
    "--filter",
    `label=com.docker.compose.service=${AGENT_SERVICE}`,
  ])).stdout.split("\n").find(Boolean);
  assert.ok(id, `no agent cache container in ${appName}`);
  return id;
}

async function agentCacheLog(w: EngineWorld, appName: string): Promise<string> {
  const id = await agentCacheContainer(w, appName);
  return (await w.docker(["logs", id])).stdout;
}

Deno.test({
  name: "agent cache (engine): set-up (engine, images, emulator)",
  ...NO_SANITIZE,
  async fn() {
    const images = await ensureImages(await ensureEngine());
    world = await startEngineWorld({
      IMAGE_CACHE: "true",
      // The cache's registry runs the test registry image (no Docker Hub here).
      IMAGE_CACHE_IMAGE: images.cache,
      PREBUILDS: "false",
      AGENT_CACHE_UPSTREAM: `http://${UPSTREAM_ALIAS}:8080`,
    });
  },
});

Deno.test({
  name:
    "agent cache (engine): fetched once for the first machine, served to the next with GitHub gone; tampered bytes refused; a stopped cache falls back",
  ...NO_SANITIZE,
  async fn(t) {
    const w = world;
    const [a, b] = [m("a"), m("b")];
    let up: GithubStandIn | undefined;
    let cacheApp = "";
    let goodSum = "";
    try {
      await t.step("create A: the image cache comes with its agent cache", async () => {
        ok(`create ${a}`, await w.run("create", a, { timeoutMs: 240_000 }));
        const listed = JSON.parse(
          (await runProvider(["list", "--json"], w.env("unused"))).stdoutText,
        );
        const cache = listed.imageCaches[0];
        cacheApp = cache.appName;
        assert.equal(cache.agents?.running, true, JSON.stringify(cache));
        assert.equal(cache.agents.address, `${cacheApp}-agents:8080`);
      });

      await t.step("GitHub's stand-in joins the cache's network with two releases", async () => {
        up = await startGithubStandIn(w.engine, {
          name: `devpod-test-github-${RUN}`,
          image: w.images.front,
          network: cacheApp,
          alias: UPSTREAM_ALIAS,
          labels: TEST_LABEL,
        });
        goodSum = await publish(up.dir, GOOD, fakeAgent(8 * 1024 * 1024), "right");
        await publish(up.dir, TAMPERED, fakeAgent(1024 * 1024), "wrong");
      });

      await t.step("A gets the agent through the cache: fetched once, verified", async () => {
        const r = await injectDownload(w, a, releaseUrl(GOOD));
        assert.equal(r.code, 0, `${r.out}${r.err}${await agentCacheLog(w, cacheApp)}`);
        figures.firstS = r.seconds;
        assert.equal(r.out.trim(), goodSum);
        assert.doesNotMatch(r.out, /as DevPod would/);
        assert.equal(await up!.gets(releasePath(GOOD)), 1);
        assert.match(await agentCacheLog(w, cacheApp), /matches the release's published sha256/);
      });

      await t.step("a release whose bytes its checksums.txt does not list is refused", async () => {
        const r = await injectDownload(w, a, releaseUrl(TAMPERED));
        assert.notEqual(r.code, 0, "DevPod's own download has no route here");
        assert.match(r.out, new RegExp(`downloading ${releaseUrl(TAMPERED)} as DevPod would`));
        assert.match(
          await agentCacheLog(w, cacheApp),
          /refused: sha256 \S+ of \S+ is not the f{64}/,
        );
        figures.refused = true;
      });

      await t.step("GitHub stopped: B gets the same agent from the cache alone", async () => {
        await up!.stop();
        ok(`create ${b}`, await w.run("create", b, { timeoutMs: 240_000 }));
        const r = await injectDownload(w, b, releaseUrl(GOOD));
        assert.equal(r.code, 0, `${r.out}${r.err}`);
        assert.equal(r.out.trim(), goodSum);
        figures.nextS = r.seconds;
        const listed = JSON.parse(
          (await runProvider(["list", "--json"], w.env("unused"))).stdoutText,
        );
        assert.deepEqual(listed.imageCaches[0].agents.stored, ["loft-sh v0.6.15 amd64"]);
        // The registry beside it restarts every few seconds here (no Docker Hub to reach at
        // its start), and doctor reports a cache whose registry is down as Stopped: asked
        // again until it catches the registry up.
        const held = /agent cache holds \S+ \S+ \(loft-sh v0\.6\.15 amd64\)/;
        await eventually("doctor shows what the agent cache holds", async () => {
          const doctor = await runProvider(["doctor"], w.env("unused"));
          return held.test(doctor.stdoutText);
        }, 60_000);
      });

      await t.step(
        "agent cache stopped: the machine falls back to DevPod's download, bounded",
        async () => {
          const id = await agentCacheContainer(w, cacheApp);
          ok("stop the agent cache", await w.docker(["stop", "-t", "1", id]));
          const r = await injectDownload(w, b, releaseUrl(GOOD));
          assert.notEqual(r.code, 0);
          assert.match(r.out, /as DevPod would/);
          assert.ok(r.seconds < 60, `fell back in ${r.seconds.toFixed(1)} s`);
          figures.fallbackS = r.seconds;
        },
      );

      await t.step(
        "delete A and B; cleanup --yes removes the cache with its agents volume",
        async () => {
          for (const id of [a, b]) ok(`delete ${id}`, await w.run("delete", id));
          ok("cleanup --yes", await runProvider(["cleanup", "--yes"], w.env("unused")));
          assert.deepEqual(await leftovers(w, cacheApp), {
            containers: [],
            volumes: [],
            networks: [],
          });
        },
      );
    } finally {
      for (const id of [a, b]) await w.run("delete", id).catch(() => {});
      await runProvider(["cleanup", "--yes"], w.env("unused")).catch(() => {});
      await up?.remove();
    }
  },
});

Deno.test({
  name: "agent cache (engine): teardown",
  ...NO_SANITIZE,
  async fn() {
    await world.close();
    const s = (x: number) => `${x.toFixed(1)} s`;
    console.log(
      `agent cache (engine): first machine ${s(figures.firstS)} (fetched once, 8 MiB), next ` +
        `${s(figures.nextS)} with GitHub stopped, tampered release refused: ` +
        `${figures.refused ? "yes" : "no"}, fallback with the cache stopped ${
          s(figures.fallbackS)
        } ` +
        "(times over `command`, ssh included; the fallback includes this sandbox's DNS stall)",
    );
  },
});
