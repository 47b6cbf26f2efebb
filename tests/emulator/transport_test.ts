/** The wire protocol: routes, methods, auth, content type, JSON, validation, profiles. */
import assert from "node:assert/strict";
import { type Emulator, startEmulator } from "./mod.ts";
import { call, ok } from "./test_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function withEmulator(
  version: "v0.30.2" | "v0.25.0" | "v0.24.0" | "v0.18.4",
  fn: (emu: Emulator) => Promise<void>,
) {
  const emu = await startEmulator({ version, token: "secret-token" });
  try {
    await fn(emu);
  } finally {
    await emu.close();
  }
}

Deno.test("auth: only x-api-key with the token is accepted (v0.30.2)", opts, async () => {
  await withEmulator("v0.30.2", async (emu) => {
    assert.deepEqual(await ok(emu, "GET", "settings.getDokployVersion"), "v0.30.2");
    const wrong = await call(emu, "GET", "settings.getDokployVersion", undefined, {
      "x-api-key": "nope",
    });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, { message: "Unauthorized" });
    const bearer = await call(emu, "GET", "settings.getDokployVersion", undefined, {
      authorization: `Bearer ${emu.token}`,
    });
    assert.equal(bearer.status, 401);
    // Even public procedures sit behind the key; only /api/health is open.
    assert.equal((await call(emu, "GET", "settings.health", undefined, {})).status, 401);
    assert.deepEqual(await ok(emu, "GET", "settings.health"), { status: "ok" });
    const health = await fetch(`${emu.url}/api/health`);
    assert.deepEqual(await health.json(), { ok: true });
  });
});

Deno.test("auth: v0.18.4 accepts only Authorization: Bearer", opts, async () => {
  await withEmulator("v0.18.4", async (emu) => {
    const bearer = await call(emu, "GET", "settings.getDokployVersion", undefined, {
      authorization: `Bearer ${emu.token}`,
    });
    assert.equal(bearer.status, 200);
    assert.equal(bearer.body, "v0.18.4");
    assert.equal((await call(emu, "GET", "settings.getDokployVersion")).status, 401);
  });
});

Deno.test(
  "routing: 404 for unknown procedure or wrong method, case-insensitive match",
  opts,
  async () => {
    await withEmulator("v0.30.2", async (emu) => {
      const unknown = await call(emu, "GET", "compose.nope");
      assert.equal(unknown.status, 404);
      assert.deepEqual(unknown.body, { message: "Not found" });
      assert.equal((await call(emu, "GET", "compose.create")).status, 404);
      assert.equal((await call(emu, "POST", "project.all")).status, 404);
      assert.equal((await call(emu, "GET", "SETTINGS.getdokployversion")).status, 200);
      // Known to the OpenAPI but not emulated: a clear 500, not a silent success.
      const missing = await call(emu, "GET", "application.one", { applicationId: "x" });
      assert.equal(missing.status, 500);
      assert.match(String((missing.body as { message: string }).message), /not implemented/);
    });
  },
);

Deno.test("POST needs application/json (415); bad JSON is a plain-text 400", opts, async () => {
  await withEmulator("v0.30.2", async (emu) => {
    const noType = await fetch(`${emu.url}/api/project.create`, {
      method: "POST",
      headers: { "x-api-key": emu.token, "content-type": "text/plain" },
      body: JSON.stringify({ name: "x" }),
    });
    assert.equal(noType.status, 415);
    await noType.body?.cancel();
    const bad = await fetch(`${emu.url}/api/project.create`, {
      method: "POST",
      headers: { "x-api-key": emu.token, "content-type": "application/json; charset=utf-8" },
      body: '{"name":',
    });
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), "Invalid JSON");
  });
});

Deno.test(
  "input validation: zod-4 issues per field, defaults and query coercion",
  opts,
  async () => {
    await withEmulator("v0.30.2", async (emu) => {
      const res = await call(emu, "POST", "compose.create", { name: "", appName: "bad/name" });
      assert.equal(res.status, 400);
      const body = res.body as { message: string; code: string; issues: Record<string, unknown>[] };
      assert.equal(body.message, "Input validation failed");
      assert.equal(body.code, "BAD_REQUEST");
      assert.deepEqual(body.issues.map((i) => [i.code, i.path]), [
        ["too_small", ["name"]],
        ["invalid_type", ["environmentId"]],
        ["invalid_format", ["appName"]],
      ]);
      assert.equal(
        body.issues[1].message,
        "Invalid input: expected string, received undefined",
      );
      // Query numbers are coerced, then range-checked.
      const limit = await call(emu, "GET", "compose.search", { limit: "0" });
      assert.equal(limit.status, 400);
      assert.equal((limit.body as { issues: { code: string }[] }).issues[0].code, "too_small");
      assert.deepEqual(await ok(emu, "GET", "compose.search", { limit: "5" }), {
        items: [],
        total: 0,
      });
      const missing = await call(emu, "POST", "compose.delete", { composeId: "x" });
      assert.equal(missing.status, 400, "deleteVolumes is required");
    });
  },
);

Deno.test(
  "GET input as Dokploy's OpenAPI adapter reads it: an empty value is absent, then zod validates",
  opts,
  async () => {
    await withEmulator("v0.30.2", async (emu) => {
      // Dokploy answers `search=` exactly so (dokploy-api.md §1, seen live): required and absent.
      const empty = await call(emu, "GET", "backup.listBackupFiles", {
        destinationId: "any",
        search: "",
      });
      assert.equal(empty.status, 400);
      const body = empty.body as {
        message: string;
        code: string;
        issues: { code: string; path: string[]; expected: string; message: string }[];
      };
      assert.equal(body.message, "Input validation failed");
      assert.equal(body.code, "BAD_REQUEST");
      assert.deepEqual(body.issues.map((i) => [i.code, i.path, i.expected, i.message]), [
        [
          "invalid_type",
          ["search"],
          "string",
          "Invalid input: expected string, received undefined",
        ],
      ]);
      // An empty number is absent too: its default applies.
      assert.deepEqual(await ok(emu, "GET", "compose.search", { limit: "", q: "" }), {
        items: [],
        total: 0,
      });
      // A repeated key is an array: a string field refuses it (strings are never coerced).
      const twice = await fetch(`${emu.url}/api/compose.search?q=a&q=b`, {
        headers: { "x-api-key": emu.token },
      });
      assert.equal(twice.status, 400);
      const issues = (await twice.json()).issues as { path: string[]; message: string }[];
      assert.deepEqual(issues.map((i) => [i.path, i.message]), [
        [["q"], "Invalid input: expected string, received array"],
      ]);
      console.log(`stand-in: empty GET value absent: ${empty.status === 400 ? "yes" : "no"}`);
    });
  },
);

Deno.test(
  "projects and compose rows (v0.30.2): environments, appName, 404s, search",
  opts,
  async () => {
    await withEmulator("v0.30.2", async (emu) => {
      const created = await ok<{
        project: { projectId: string; name: string };
        environment: { environmentId: string; name: string; isDefault: boolean };
      }>(emu, "POST", "project.create", { name: "devpod", unknownKey: 1 });
      assert.equal(created.project.name, "devpod");
      assert.equal(created.environment.name, "production");
      assert.equal(created.environment.isDefault, true);
      assert.match(created.project.projectId, /^[\w-]{21}$/);

      const row = await ok(emu, "POST", "compose.create", {
        name: "m",
        environmentId: created.environment.environmentId,
        appName: "My-Machine",
        description: "devpod machine m-1",
        composeType: "docker-compose",
        sourceType: "raw",
        composeFile: "services: {}",
      });
      assert.match(String(row.appName), /^my-machine-[a-z0-9]{6}$/);
      assert.equal(row.composeStatus, "idle");
      assert.equal(row.serverId, null);
      assert.equal(row.composeFile, "services: {}");
      assert.ok(!Number.isNaN(Date.parse(String(row.createdAt))));

      const one = await ok<
        { environments: { compose: { composeId: string; appName: string }[] }[] }
      >(
        emu,
        "GET",
        "project.one",
        { projectId: created.project.projectId },
      );
      assert.equal(one.environments[0].compose[0].composeId, row.composeId);
      assert.equal(one.environments[0].compose[0].appName, row.appName);
      const all = await ok<unknown[]>(emu, "GET", "project.all");
      assert.equal(all.length, 1);
      const envs = await ok<unknown[]>(emu, "GET", "environment.byProjectId", {
        projectId: created.project.projectId,
      });
      assert.equal(envs.length, 1);
      const prod = await call(emu, "POST", "environment.create", {
        name: "production",
        projectId: created.project.projectId,
      });
      assert.equal(prod.status, 400);

      const found = await ok<{ items: { composeId: string }[]; total: number }>(
        emu,
        "GET",
        "compose.search",
        { description: "MACHINE M-1" },
      );
      assert.equal(found.total, 1);
      assert.equal(found.items[0].composeId, row.composeId);
      assert.equal(
        (await ok<{ total: number }>(emu, "GET", "compose.search", { q: "nothing" })).total,
        0,
      );

      const notFound = await call(emu, "GET", "project.one", { projectId: "missing" });
      assert.equal(notFound.status, 404);
      assert.equal((notFound.body as { message: string }).message, "Project not found");
      const deploy = await call(emu, "POST", "compose.deploy", { composeId: "missing" });
      assert.equal(deploy.status, 404);
      assert.equal((deploy.body as { message: string }).message, "Compose not found");
      // start before any deploy: the compose files do not exist yet → 500.
      const start = await call(emu, "POST", "compose.start", { composeId: row.composeId });
      assert.equal(start.status, 500);

      assert.deepEqual(await ok(emu, "GET", "server.all"), []);
      assert.equal(await ok(emu, "GET", "server.publicIp"), null);
      assert.deepEqual((await emu.snapshot()).projects, [{
        projectId: created.project.projectId,
        name: "devpod",
        environments: [{ environmentId: created.environment.environmentId, name: "production" }],
      }]);
      const removed = await ok(emu, "POST", "project.remove", {
        projectId: created.project.projectId,
      });
      assert.equal(removed.projectId, created.project.projectId);
      assert.deepEqual((await emu.snapshot()).composes, []);
    });
  },
);

Deno.test("v0.25.0: environments but no compose.search", opts, async () => {
  await withEmulator("v0.25.0", async (emu) => {
    const created = await ok<{ environment: { environmentId: string } }>(
      emu,
      "POST",
      "project.create",
      { name: "p" },
    );
    assert.ok(created.environment.environmentId);
    assert.equal((await call(emu, "GET", "compose.search", { q: "x" })).status, 404);
  });
});

Deno.test(
  "v0.24.0: bare project, no environment router, compose.create by projectId",
  opts,
  async () => {
    await withEmulator("v0.24.0", async (emu) => {
      const project = await ok(emu, "POST", "project.create", { name: "p" });
      assert.ok(project.projectId);
      assert.equal("environment" in project, false);
      const env = await call(emu, "GET", "environment.byProjectId", {
        projectId: project.projectId,
      });
      assert.equal(env.status, 404);
      const byEnv = await call(emu, "POST", "compose.create", { name: "m", environmentId: "e" });
      assert.equal(byEnv.status, 400);
      const row = await ok(emu, "POST", "compose.create", {
        name: "m",
        projectId: project.projectId,
      });
      assert.equal(row.projectId, project.projectId);
      const one = await ok<{ compose: { composeId: string }[] }>(emu, "GET", "project.one", {
        projectId: project.projectId,
      });
      assert.equal(one.compose[0].composeId, row.composeId);
    });
  },
);

Deno.test("servers option and request recording", opts, async () => {
  const emu = await startEmulator({
    servers: [{ serverId: "srv-1", name: "Remote One", ipAddress: "203.0.113.7" }],
  });
  try {
    const servers = await ok<{ serverId: string; ipAddress: string }[]>(emu, "GET", "server.all");
    assert.equal(servers[0].ipAddress, "203.0.113.7");
    assert.equal((await ok(emu, "GET", "server.one", { serverId: "srv-1" })).name, "Remote One");
    assert.equal((await call(emu, "GET", "server.one", { serverId: "x" })).status, 404);
    const last = emu.requests.at(-1)!;
    assert.equal(last.method, "GET");
    assert.equal(last.procedure, "server.one");
    assert.equal(last.status, 404);
    assert.deepEqual(last.query, { serverId: "x" });
    assert.equal(last.headers["x-api-key"], emu.token);
  } finally {
    await emu.close();
  }
});
