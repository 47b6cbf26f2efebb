/**
 * Index of the Dokploy v0.30.2 OpenAPI document: which procedures exist, their HTTP
 * method and input schema. Loaded once per process, on first use.
 */
import type { JsonSchema } from "./schema.ts";

export interface Operation {
  /** Procedure name as spelled in the document, e.g. "compose.create". */
  procedure: string;
  method: "GET" | "POST";
  /** Input schema; for GET an object schema assembled from the query parameters. */
  schema: JsonSchema | null;
}

interface RawParameter {
  in: string;
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}

interface RawOperation {
  parameters?: RawParameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

let cache: Map<string, Operation> | undefined;

/** All operations keyed by lower-cased procedure name (routes match case-insensitively). */
export function operations(): Map<string, Operation> {
  if (cache) return cache;
  const url = new URL("./dokploy-openapi.json", import.meta.url);
  const doc = JSON.parse(Deno.readTextFileSync(url)) as {
    paths: Record<string, Record<string, RawOperation>>;
  };
  const index = new Map<string, Operation>();
  for (const [path, methods] of Object.entries(doc.paths)) {
    const procedure = path.replace(/^\//, "");
    for (const [method, op] of Object.entries(methods)) {
      if (method === "get") {
        index.set(procedure.toLowerCase(), {
          procedure,
          method: "GET",
          schema: querySchema(op.parameters ?? []),
        });
      } else if (method === "post") {
        const schema = op.requestBody?.content?.["application/json"]?.schema ?? null;
        index.set(procedure.toLowerCase(), { procedure, method: "POST", schema });
      }
    }
  }
  cache = index;
  return index;
}

function querySchema(params: RawParameter[]): JsonSchema | null {
  const query = params.filter((p) => p.in === "query");
  if (!query.length) return null;
  const properties: Record<string, JsonSchema> = {};
  for (const p of query) properties[p.name] = p.schema ?? {};
  const required = query.filter((p) => p.required).map((p) => p.name);
  return { type: "object", properties, required };
}

/**
 * Turns a query string into the procedure input as @dokploy/trpc-openapi 0.0.18 does behind
 * Next.js (adapters/next.js → node-http/input.js `getQuery`, core.js): Next parses the query
 * (one value: a string; a repeated key: an array), a falsy value — an empty one — is dropped,
 * so `search=` is ABSENT and a required string can never be sent empty; an array field takes a
 * single value as a one-item array; then number and boolean fields are coerced the way
 * `z.coerce` does (`Number(v)`, `Boolean(v)`: any non-empty text is true, "false" too), strings
 * never (a repeated key for a string field fails as an array). Validation comes after.
 */
export function queryInput(schema: JsonSchema | null, params: URLSearchParams): unknown {
  const input: Record<string, unknown> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    const value: string | string[] = values.length === 1 ? values[0] : values;
    if (value === "") continue; // getQuery's `if (value)`
    const prop = schema?.properties?.[key];
    if (prop && hasType(prop, "array")) {
      input[key] = (Array.isArray(value) ? value : [value]).map((v) => coerce(prop.items, v));
    } else {
      input[key] = coerce(prop, value);
    }
  }
  return input;
}

function hasType(s: JsonSchema, t: string): boolean {
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf)!.some((a) => hasType(a, t));
  return Array.isArray(s.type) ? s.type.includes(t) : s.type === t;
}

function coerce(s: JsonSchema | undefined, raw: string | string[]): unknown {
  if (!s || hasType(s, "string")) return raw;
  if (hasType(s, "number") || hasType(s, "integer")) return Number(raw);
  if (hasType(s, "boolean")) return Boolean(raw);
  return raw;
}
