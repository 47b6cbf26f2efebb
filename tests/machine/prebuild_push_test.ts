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

  Deno.test(`prebuilds under ${shell}: a listing pushes each held prebuild once; a failed one waits`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "devpod-prebuild-all-" });
    try {
      // dd44 is in the registry already; ee55's push fails.
      const standIns = `
curl() { for a; do url=$a; done; case $url in *dd44) return 0 ;; esac; return 22; }
docker() {
  case $1 in
    images) printf '%s\\n' ubuntu:22.04 localhost:5151/prebuilds:devpod-aa11 localhost:5151/prebuilds:latest vsc-x:devpod-bb22 127.0.0.1:5151/a/b:devpod-cc33 localhost:5151/prebuilds:devpod-dd44 localhost:5151/prebuilds:devpod-ee55 localhost:5151/prebuilds:devsy-ff66 ;;
    push) echo "push $2" >>"${dir}/calls"; case $2 in *ee55) return 1 ;; esac ;;
  esac
}
`;
      const r = await call(
        shell,
        `${standIns}push_new_prebuilds\necho listed >>"${dir}/calls"\npush_new_prebuilds\n` +
          `PREBUILDS_FAILED=" "\necho retry >>"${dir}/calls"\npush_new_prebuilds\ncat "${dir}/calls"`,
        { DEVPOD_STATE_DIR: dir },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), [
        "push localhost:5151/prebuilds:devpod-aa11",
        "push 127.0.0.1:5151/a/b:devpod-cc33",
        "push localhost:5151/prebuilds:devpod-ee55",
        "push localhost:5151/prebuilds:devsy-ff66", // Devsy's tag
        "listed", // the second listing asks about nothing: all settled or failed
        "retry", // once the failed list is emptied, only the failed one is tried again
        "push localhost:5151/prebuilds:devpod-ee55",
      ]);
      assert.equal(
        r.stderr.match(/push of localhost:5151\/prebuilds:devpod-ee55 failed/g)?.length,
        2,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`prebuilds under ${shell}: the poller pushes a prebuild tagged without any event, listing only on a change`, async () => {
    const r = await poll(shell, "");
    assert.equal(r.code, 0, r.stderr);
    const calls = r.stdout.trim().split("\n");
    // One listing at start; none while the reference store is unchanged; then the new
    // prebuild is pushed once, whatever the listings after it (busybox compares whole
    // seconds: it lists at each poll until the second of the change is over); then quiet.
    assert.deepEqual(calls.slice(0, 2), ["images", "quiet"], r.stdout);
    assert.deepEqual(calls.filter((c) => c.startsWith("push")), [
      "push localhost:5151/prebuilds:devpod-aa11",
    ]);
    assert.deepEqual(calls.slice(calls.indexOf("settled")), ["settled", "ended"], r.stdout);
  });

  Deno.test(`prebuilds under ${shell}: with no reference store to watch, the poller lists every few polls`, async () => {
    const r = await poll(shell, "info) return 1 ;;");
    assert.equal(r.code, 0, r.stderr);
    const calls = r.stdout.trim().split("\n");
    assert.deepEqual(calls.filter((c) => c.startsWith("push")), [
      "push localhost:5151/prebuilds:devpod-aa11",
    ]);
    assert.equal(calls.at(-1), "ended");
  });
}

/**
 * Runs the poller against stand-ins: a `sleep` standing in for dockerd, a `docker` whose
 * `images` lists the file `images` and whose `info` names a data root in the temp dir
 * (`infoCase` may override it). A prebuild appears in `images` and the reference store is
 * written, as BuildKit's exporter does, with no event. Prints the recorded calls.
 */
async function poll(shell: string, infoCase: string) {
  const dir = await Deno.makeTempDir({ prefix: "devpod-prebuild-poll-" });
  try {
    const script = `
curl() { return 22; }
docker() {
  case $1 in
    ${infoCase}
    info) echo "${dir}/root/image/overlay2" ;;
    images) echo images >>"${dir}/calls"; cat "${dir}/images" ;;
    push) echo "push $2" >>"${dir}/calls" ;;
  esac
}
waitfor() { i=0; until grep -q "$1" "${dir}/calls" 2>/dev/null; do i=$((i + 1)); [ $i -lt 100 ] || return 1; sleep 0.1; done; }
mkdir -p "${dir}/root/image/overlay2"
echo ubuntu:22.04 >"${dir}/images"
sleep 60 & DOCKERD_PID=$!
PREBUILD_POLL_S=0.1
PREBUILD_BLIND_EVERY=3
prebuild_poller & poller=$!
waitfor images || echo "no first listing"
sleep 1
echo quiet >>"${dir}/calls"
echo localhost:5151/prebuilds:devpod-aa11 >>"${dir}/images"
echo '{}' >"${dir}/root/image/overlay2/repositories.json"
waitfor "push localhost" || echo "not pushed"
sleep 1.5
echo settled >>"${dir}/calls"
sleep 1
kill "$DOCKERD_PID"
i=0; while kill -0 "$poller" 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
kill -0 "$poller" 2>/dev/null || echo ended >>"${dir}/calls"
cat "${dir}/calls"
`;
    return await call(shell, script, { DEVPOD_STATE_DIR: dir });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
