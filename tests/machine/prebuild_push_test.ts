/**
 * The bootstrap's prebuild support (issue 20) piece by piece under each POSIX shell it
 * must support: the DEVPOD_PREBUILD_REGISTRY check, and which images the watcher pushes
 * (stand-in `docker` and `curl` that record how they were called). The whole flow, with
 * a real engine, socat and registry, is tests/engine/prebuilds_test.ts.
 */
import assert from "node:assert/strict";
import { BOOTSTRAP_SCRIPT } from "../../machine/bootstrap.ts";
import { hasTool, run } from "./harness.ts";

const SHELLS: string[] = [];
for (const shell of ["dash", "bash", "busybox"]) if (await hasTool(shell)) SHELLS.push(shell);
const shellArgs = (shell: string) => (shell === "busybox" ? ["busybox", "ash"] : [shell]);
const MAIN = "\n# ---------------------------------------------------------------- main\n";

function call(shell: string, code: string, env: Record<string, string> = {}) {
  const [cmd, ...pre] = shellArgs(shell);
  const library = BOOTSTRAP_SCRIPT.slice(0, BOOTSTRAP_SCRIPT.indexOf(MAIN));
  return run(cmd, [...pre, "-c", `${library}\n${code}`, "devpod-bootstrap"], 30_000, {
    PATH: "/usr/bin:/bin",
    ...env,
  });
}

for (const shell of SHELLS) {
  Deno.test(`prebuilds under ${shell}: DEVPOD_PREBUILD_REGISTRY is host:port or nothing`, async () => {
    const good = await call(shell, 'parse_prebuilds; printf "[%s]" "$PREBUILD_REGISTRY"', {
      DEVPOD_PREBUILD_REGISTRY: "devpod-image-cache-ab12cd-prebuilds:5000",
    });
    assert.equal(good.stdout, "[devpod-image-cache-ab12cd-prebuilds:5000]");
    assert.equal(good.stderr, "");
    for (
      const [registry, port] of [
        ["no-port", "5151"],
        ["host:0", "5151"],
        ["bad host:5000", "5151"],
        ["host:5000;rm", "5151"],
        ["host:5000", "51x1"],
      ]
    ) {
      const r = await call(shell, 'parse_prebuilds; printf "[%s]" "$PREBUILD_REGISTRY"', {
        DEVPOD_PREBUILD_REGISTRY: registry,
        DEVPOD_PREBUILD_PORT: port,
      });
      assert.equal(r.stdout, "[]", `${registry} / ${port}`);
      assert.match(r.stderr, /warning: DEVPOD_PREBUILD_REGISTRY must be host:port .*no prebuilds/);
    }
  });

  Deno.test(`prebuilds under ${shell}: only new localhost:PORT/…:devpod-… (Devsy: devsy-…) images are pushed`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "devpod-prebuild-push-" });
    try {
      // Stand-ins (functions: the bootstrap puts the system's PATH first): `curl` answers
      // as the registry would (0: the manifest is there), `docker` records.
      const standIns = `
curl() { for a; do url=$a; done; echo "curl $url" >>"${dir}/calls"; case $url in *present*) return 0 ;; esac; return 22; }
docker() { echo "docker $*" >>"${dir}/calls"; }
`;
      const names = [
        "localhost:5151/prebuilds:devpod-0123abcd",
        "127.0.0.1:5151/team/app:devpod-present",
        "127.0.0.1:5151/team/app:devpod-99ff",
        "localhost:5151/prebuilds:latest",
        "localhost:5000/prebuilds:devpod-0123abcd",
        "vsc-app-12ab:devpod-0123abcd",
        "ubuntu:22.04",
        // Devsy's prebuild tag (its pkg/devcontainer/config/prebuild.go), and look-alikes.
        "localhost:5151/prebuilds:devsy-4567cdef",
        "localhost:5151/prebuilds:devsyx-4567cdef",
        "localhost:5151/devsy-app:latest",
        "vsc-app-12ab:devsy-4567cdef",
      ];
      const r = await call(
        shell,
        standIns + names.map((n) => `push_prebuild '${n}'`).join("\n") + `\ncat "${dir}/calls"`,
        { DEVPOD_STATE_DIR: dir },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), [
        "curl http://127.0.0.1:5151/v2/prebuilds/manifests/devpod-0123abcd",
        "docker push localhost:5151/prebuilds:devpod-0123abcd",
        "curl http://127.0.0.1:5151/v2/team/app/manifests/devpod-present",
        "curl http://127.0.0.1:5151/v2/team/app/manifests/devpod-99ff",
        "docker push 127.0.0.1:5151/team/app:devpod-99ff",
        "curl http://127.0.0.1:5151/v2/prebuilds/manifests/devsy-4567cdef",
        "docker push localhost:5151/prebuilds:devsy-4567cdef",
      ]);
      assert.match(r.stderr, /prebuilds: pushed localhost:5151\/prebuilds:devpod-0123abcd/);
      // No lock is left behind: the next tag event of the same name is handled again.
      const left = [...Deno.readDirSync(dir)].map((e) => e.name)
        .filter((n) => n.startsWith("prebuild-push.devpod-"));
      assert.deepEqual(left, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`prebuilds under ${shell}: at start (and after a load) every held prebuild is pushed`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "devpod-prebuild-all-" });
    try {
      const standIns = `
curl() { return 22; }
docker() {
  case $1 in
    images) printf '%s\\n' ubuntu:22.04 localhost:5151/prebuilds:devpod-aa11 localhost:5151/prebuilds:latest vsc-x:devpod-bb22 127.0.0.1:5151/a/b:devpod-cc33 localhost:5151/prebuilds:devsy-dd44 ;;
    push) echo "push $2" >>"${dir}/calls" ;;
  esac
}
`;
      const r = await call(shell, `${standIns}push_all_prebuilds\ncat "${dir}/calls"`, {
        DEVPOD_STATE_DIR: dir,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), [
        "push localhost:5151/prebuilds:devpod-aa11",
        "push 127.0.0.1:5151/a/b:devpod-cc33",
        "push localhost:5151/prebuilds:devsy-dd44",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
