/**
 * Preview URLs (issue 19), without network or processes: the htpasswd hash, the
 * forwarder's definition, and the exact labels and networks Dokploy v0.30.2 writes at
 * deploy time (the emulator's port of utils/docker/domain.ts) and Traefik reads.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { renderComposeFile } from "../../lib/machine/compose.ts";
import {
  forwarderService,
  hasPreviewRelay,
  middlewareName,
  type Preview,
  previewsIn,
  RELAY_PORT,
  withPreviews,
} from "../../lib/preview/forwarder.ts";
import { checkHost, hostUnder, isPublicSslip } from "../../lib/preview/host.ts";
import { apr1, generateCredentials, htpasswdLine } from "../../lib/preview/htpasswd.ts";
import { parseAuth, parsePort, previewInfos } from "../../lib/preview/manage.ts";
import { interpolate } from "../emulator/compose_spec.ts";
import { deployedComposeFile } from "../emulator/procedures/domains.ts";
import type { ComposeRow, DomainRow } from "../emulator/store.ts";

const spec = {
  machineId: "ws-ab12c",
  image: "devpod-machine:1",
  dockerMode: "dind" as const,
  cpus: 2,
  memoryMiB: 4096,
  sshPort: 32222,
  authorizedKey: "ssh-ed25519 AAAAC3Nza devpod",
  inactivityTimeoutSec: 1800,
  dokployNetwork: false,
  disableAgentTelemetry: false,
  imageCache: null,
  providerVersion: "v0.1.0",
};
const APP = "devpod-ws-ab12c-x1y2z3";
const withAuth: Preview = {
  port: 3000,
  auth: {
    middleware: "devpod-preview-ws-ab12c-3000-0a1b2c3d",
    htpasswd: "preview-ab12:$apr1$abcdefgh$ckT15POyCRlen.h6XtGAZ1",
  },
};
const open: Preview = { port: 8080, auth: null };

function domainRow(over: Partial<DomainRow>): DomainRow {
  return {
    domainId: "d1",
    host: "ws-3000.dev.example.com",
    https: false,
    port: 3000,
    path: "/",
    serviceName: "preview",
    domainType: "compose",
    uniqueConfigKey: 7,
    createdAt: "",
    composeId: "c1",
    applicationId: null,
    previewDeploymentId: null,
    customCertResolver: null,
    customEntrypoint: null,
    certificateType: "none",
    internalPath: "/",
    stripPath: false,
    middlewares: [],
    enabled: true,
    ...over,
  };
}

function composeRow(composeFile: string): ComposeRow {
  return { appName: APP, composeFile } as ComposeRow;
}

Deno.test("apr1 hashes as openssl passwd -apr1 does (values produced by OpenSSL 3)", () => {
  // openssl passwd -apr1 -salt abcdefgh hunter2
  assert.equal(apr1("hunter2", "abcdefgh"), "$apr1$abcdefgh$ckT15POyCRlen.h6XtGAZ1");
  // openssl passwd -apr1 -salt Zz./9q a-much-longer-password-than-sixteen
  assert.equal(
    apr1("a-much-longer-password-than-sixteen", "Zz./9q"),
    "$apr1$Zz./9q$umzXqsHttk2c1/4gDJoyv0",
  );
  const c = generateCredentials();
  assert.match(c.user, /^preview-[a-z2-9]{4}$/);
  assert.match(c.password, /^[A-Za-z0-9]{24}$/);
  assert.notEqual(generateCredentials().password, c.password);
  const line = htpasswdLine(c.user, c.password);
  assert.match(line, /^preview-[a-z2-9]{4}:\$apr1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}$/);
  assert.ok(!line.includes(c.password), "the line holds the hash, never the password");
});

Deno.test("forwarder: unprivileged, no socket or volume, only the machine's network", () => {
  const f = forwarderService({
    image: "img",
    machineId: "ws",
    providerVersion: "v1",
    previews: [open, withAuth],
  });
  assert.equal(f.image, "img", "the machine's image: already on the server");
  assert.equal(f.entrypoint[0], "perl");
  assert.equal(f.user, "65534:65534");
  assert.equal(f.read_only, true);
  assert.deepEqual(f.cap_drop, ["ALL"]);
  assert.deepEqual(f.security_opt, ["no-new-privileges:true"]);
  assert.deepEqual(f.networks, ["machine"], "Dokploy adds dokploy-network itself");
  const keys = Object.keys(f);
  for (const forbidden of ["privileged", "volumes", "ports", "cap_add", "network_mode"]) {
    assert.ok(!keys.includes(forbidden), `no ${forbidden}`);
  }
  assert.equal(f.environment.DEVPOD_PREVIEW_PORTS, "3000 8080", "only the previewed ports");
  assert.equal(f.environment.DEVPOD_PREVIEW_MACHINE, "machine.${COMPOSE_PROJECT_NAME}_machine");
  assert.equal(f.environment.DEVPOD_PREVIEW_RELAY_PORT, String(RELAY_PORT));
  assert.ok(Array.isArray(f.labels), "a list: Dokploy adds its labels only to a list");
  assert.deepEqual(
    f.labels.filter((l) => l.startsWith("traefik.")),
    [
      "traefik.http.middlewares.devpod-preview-ws-ab12c-3000-0a1b2c3d.basicauth.users=" +
      "preview-ab12:$$apr1$$abcdefgh$$ckT15POyCRlen.h6XtGAZ1",
    ],
    "compose would eat a single $",
  );
  assert.match(middlewareName("Ws.1", 3000), /^devpod-preview-ws-1-3000-[0-9a-f]{8}$/);
});

Deno.test("the machine runs the relay; the forwarder appears only with previews", () => {
  const bare = renderComposeFile(spec);
  const doc = YAML.parse(bare);
  assert.equal(doc.services.machine.environment.DEVPOD_PREVIEW_RELAY_PORT, String(RELAY_PORT));
  assert.equal(
    doc.services.machine.environment.DEVPOD_PREVIEW_FORWARDER,
    "preview.${COMPOSE_PROJECT_NAME}_machine",
    "the only peer the relay serves",
  );
  assert.match(doc.services.machine.environment.DEVPOD_PREVIEW_RELAY, /devpod preview relay/);
  assert.equal(doc.services.preview, undefined);
  assert.ok(hasPreviewRelay(bare));
  const onDokployNetwork = renderComposeFile({
    ...spec,
    dokployNetwork: true,
    previews: [withAuth],
  });
  assert.ok(!hasPreviewRelay(onDokployNetwork), "no relay where every app could reach it");
  assert.equal(YAML.parse(onDokployNetwork).services.preview, undefined);
});

Deno.test("withPreviews gives exactly what renderComposeFile renders (start sees no change)", () => {
  const bare = renderComposeFile(spec);
  const two = renderComposeFile({ ...spec, previews: [withAuth, open] });
  assert.equal(withPreviews(bare, [withAuth, open]), two);
  assert.equal(withPreviews(two, []), bare, "the last preview removed: no forwarder");
  assert.equal(withPreviews(two, [open]), renderComposeFile({ ...spec, previews: [open] }));
  const backups = renderComposeFile({ ...spec, backups: true });
  assert.equal(
    withPreviews(backups, [withAuth]),
    renderComposeFile({ ...spec, backups: true, previews: [withAuth] }),
  );
  assert.deepEqual(previewsIn(two), [withAuth, open]);
  assert.deepEqual(previewsIn(bare), []);
  assert.deepEqual(previewsIn("not: [yaml"), []);
});

Deno.test("Dokploy's deploy-time rewrite: the labels and networks Traefik reads", () => {
  const file = renderComposeFile({ ...spec, previews: [withAuth] });
  const out = YAML.parse(
    deployedComposeFile(composeRow(file), [
      domainRow({ middlewares: [`${withAuth.auth!.middleware}@docker`] }),
    ]),
  );
  const r = `${APP}-7-web`;
  const labels: string[] = out.services.preview.labels;
  assert.deepEqual(labels.filter((l) => l.startsWith("traefik.") && !l.includes(".basicauth.")), [
    "traefik.docker.network=dokploy-network",
    `traefik.http.routers.${r}.rule=Host(\`ws-3000.dev.example.com\`)`,
    `traefik.http.routers.${r}.entrypoints=web`,
    `traefik.http.services.${r}.loadbalancer.server.port=3000`,
    `traefik.http.routers.${r}.service=${r}`,
    `traefik.http.routers.${r}.middlewares=devpod-preview-ws-ab12c-3000-0a1b2c3d@docker`,
    "traefik.enable=true",
  ]);
  // What Traefik finally reads, after compose's interpolation: the htpasswd line itself.
  const auth = labels.find((l) => l.includes(".basicauth.users="))!;
  assert.equal(
    interpolate(auth, {}),
    "traefik.http.middlewares.devpod-preview-ws-ab12c-3000-0a1b2c3d.basicauth.users=" +
      withAuth.auth!.htpasswd,
  );
  assert.deepEqual(out.services.preview.networks, ["machine", "dokploy-network", "default"]);
  assert.deepEqual(out.networks["dokploy-network"], { external: true });
  assert.ok(!out.services.machine.networks.includes("dokploy-network"), "never the machine");
  assert.deepEqual(
    out.services.machine,
    YAML.parse(file).services.machine,
    "the machine's definition is unchanged: compose keeps its container",
  );
});

Deno.test("each end names the other by service name on the machine's network, not container", () => {
  // As deployed by Dokploy (dokploy-network added), then interpolated by compose.
  const file = deployedComposeFile(composeRow(renderComposeFile({ ...spec, previews: [open] })), [
    domainRow({}),
  ]);
  const out = YAML.parse(interpolate(file, { COMPOSE_PROJECT_NAME: APP }));
  const machineName = out.services.preview.environment.DEVPOD_PREVIEW_MACHINE;
  const forwarderName = out.services.machine.environment.DEVPOD_PREVIEW_FORWARDER;
  // `<service>.<network>`: compose names a project's network `<project>_<key>`, and makes
  // each service's name an alias on every network it joins (v1 and v2 alike).
  assert.equal(machineName, `machine.${APP}_machine`);
  assert.equal(forwarderName, `preview.${APP}_machine`);
  const [service, network] = [machineName.split(".")[0], machineName.split(".")[1]];
  assert.ok(out.services[service].networks.includes(network.slice(APP.length + 1)));
  assert.ok(out.services.preview.networks.includes(forwarderName.split("_").pop()));
  // No container name of either compose: v2 `<p>-machine-1`, v1 `<p>_machine_1`.
  for (const name of [machineName, forwarderName]) assert.doesNotMatch(name, /[-_]\d+$/);
  // Never a bare service name: the forwarder is on dokploy-network too, where `machine`
  // and `preview` are other projects' as well.
  assert.ok(out.services.preview.networks.includes("dokploy-network"));
  assert.ok(machineName.includes(".") && forwarderName.includes("."));
});

Deno.test("Dokploy's rewrite with HTTPS: the web router only redirects", () => {
  const file = renderComposeFile({ ...spec, previews: [withAuth] });
  const labels: string[] = YAML.parse(
    deployedComposeFile(composeRow(file), [
      domainRow({ https: true, certificateType: "letsencrypt", middlewares: ["mw@docker"] }),
    ]),
  ).services.preview.labels;
  assert.ok(
    labels.includes(`traefik.http.routers.${APP}-7-web.middlewares=redirect-to-https@file`),
  );
  assert.ok(labels.includes(`traefik.http.routers.${APP}-7-websecure.middlewares=mw@docker`));
  assert.ok(
    labels.includes(`traefik.http.routers.${APP}-7-websecure.tls.certresolver=letsencrypt`),
  );
  assert.ok(labels.includes(`traefik.http.routers.${APP}-7-websecure.entrypoints=websecure`));
});

Deno.test("Dokploy's rewrite: a domain naming a missing service fails the deploy", () => {
  const bare = renderComposeFile(spec);
  assert.throws(
    () => deployedComposeFile(composeRow(bare), [domainRow({})]),
    /attached to service "preview" which does not exist in the compose/,
  );
  assert.equal(deployedComposeFile(composeRow(bare), []), bare, "no domains: byte for byte");
  assert.equal(
    deployedComposeFile(composeRow(bare), [domainRow({ enabled: false })]),
    bare,
    "a disabled domain writes nothing",
  );
});

Deno.test("previewInfos joins the forwarder with Dokploy's domains and names gaps", () => {
  const file = renderComposeFile({ ...spec, previews: [withAuth, open] });
  const infos = previewInfos("ws", {
    composeId: "c1",
    name: "n",
    appName: APP,
    composeStatus: "done",
    composeFile: file,
    domains: [
      {
        domainId: "d1",
        host: "a.example.com",
        port: 3000,
        https: true,
        serviceName: "preview",
        middlewares: [`${withAuth.auth!.middleware}@docker`],
      },
      { domainId: "d9", host: "x.example.com", port: 9999, https: false, serviceName: "preview" },
      { domainId: "d0", host: "other.example.com", port: 80, serviceName: "web" },
    ],
  });
  assert.deepEqual(infos.map((i) => [i.port, i.url, i.auth, i.user, i.problem]), [
    [3000, "https://a.example.com", "basic", "preview-ab12", null],
    [8080, null, "none", null, "the forwarder serves it but Dokploy has no domain for it"],
    [
      9999,
      "http://x.example.com",
      "none",
      null,
      "Dokploy has a domain for it but the forwarder does not serve it",
    ],
  ]);
});

Deno.test("hosts, ports and --auth: one-line errors naming the fix", () => {
  assert.equal(hostUnder("dev.example.com", "My_WS", 3000), "my-ws-3000.dev.example.com");
  assert.equal(hostUnder("d.io", "a".repeat(80), 8080).split(".")[0].length, 63);
  assert.equal(checkHost("App.Example.com."), "app.example.com");
  assert.throws(() => checkHost("not a host"), /--host "not a host" is not a host name/);
  assert.throws(() => checkHost("localhost"), /full name/);
  assert.ok(!isPublicSslip("devpod-x-1a2b3c-127-0-0-1.sslip.io"));
  assert.ok(!isPublicSslip("devpod-x-1a2b3c-192-168-1-4.sslip.io"));
  assert.ok(!isPublicSslip("devpod-x-1a2b3c-172-20-0-4.sslip.io"));
  assert.ok(isPublicSslip("devpod-x-1a2b3c-203-0-113-9.sslip.io"));
  assert.equal(parsePort("3000"), 3000);
  assert.throws(() => parsePort("70000"), /port "70000" is not a TCP port/);
  assert.throws(() => parsePort("abc"), /not a TCP port/);
  assert.equal(parseAuth(undefined), "basic");
  assert.throws(() => parseAuth("digest"), /--auth "digest" must be basic \(the default\) or none/);
});
