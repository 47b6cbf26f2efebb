/**
 * A small JSON-schema validator for the subset the Dokploy OpenAPI uses, producing
 * zod-4-style issues, so the emulator rejects input exactly where the real server
 * (tRPC + zod 4) would and with the same message shapes.
 */

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  items?: JsonSchema;
  default?: unknown;
  additionalProperties?: unknown;
}

export interface Issue {
  code: string;
  path: (string | number)[];
  message: string;
  [extra: string]: unknown;
}

export type ValidationResult =
  | { ok: true; value: unknown }
  | { ok: false; issues: Issue[] };

/** Validates `value`; on success returns it with defaults applied and unknown keys dropped. */
export function validate(schema: JsonSchema, value: unknown): ValidationResult {
  const issues: Issue[] = [];
  const out = check(schema, value, [], issues);
  return issues.length ? { ok: false, issues } : { ok: true, value: out };
}

/** The type name zod reports as "received". */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number" && Number.isNaN(v)) return "NaN";
  return typeof v;
}

function isNullSchema(s: JsonSchema): boolean {
  return s.type === "null";
}

/** What zod would name as "expected" for a schema (used for missing keys too). */
function expectedName(s: JsonSchema): string {
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.some(isNullSchema) ? "nonoptional" : "union";
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  return t === "integer" ? "int" : t ?? "unknown";
}

function typeMatches(t: string, v: unknown): boolean {
  switch (t) {
    case "string":
      return typeof v === "string";
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "integer":
      return typeof v === "number" && Number.isSafeInteger(v);
    case "boolean":
      return typeof v === "boolean";
    case "null":
      return v === null;
    case "array":
      return Array.isArray(v);
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    default:
      return true;
  }
}

function check(s: JsonSchema, v: unknown, path: (string | number)[], issues: Issue[]): unknown {
  if (v === undefined && s.default !== undefined) return structuredClone(s.default);

  const alts = s.anyOf ?? s.oneOf;
  if (alts) return checkUnion(s, alts, v, path, issues);

  if ("const" in s && v !== s.const) {
    issues.push({
      code: "invalid_value",
      values: [s.const],
      path,
      message: `Invalid input: expected ${JSON.stringify(s.const)}`,
    });
    return v;
  }
  if (s.enum && !s.enum.includes(v)) {
    issues.push({
      code: "invalid_value",
      values: s.enum,
      path,
      message: `Invalid option: expected one of ${s.enum.map((e) => JSON.stringify(e)).join("|")}`,
    });
    return v;
  }

  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (types.length && !types.some((t) => typeMatches(t, v))) {
    const expected = expectedName(s);
    const extra = expected === "int" ? { format: "safeint" } : {};
    issues.push({
      expected,
      ...extra,
      code: "invalid_type",
      path,
      message: `Invalid input: expected ${expected}, received ${typeName(v)}`,
    });
    return v;
  }

  if (typeof v === "string") checkString(s, v, path, issues);
  else if (typeof v === "number") checkNumber(s, v, path, issues);
  else if (Array.isArray(v)) return checkArray(s, v, path, issues);
  else if (typeof v === "object" && v !== null) return checkObject(s, v, path, issues);
  return v;
}

function checkUnion(
  s: JsonSchema,
  alts: JsonSchema[],
  v: unknown,
  path: (string | number)[],
  issues: Issue[],
): unknown {
  const nonNull = alts.filter((a) => !isNullSchema(a));
  if (v === null && nonNull.length < alts.length) return null;
  if (v === undefined) {
    // Reached only for required keys: optional ones are skipped by checkObject.
    const expected = expectedName(s);
    issues.push({
      expected,
      code: "invalid_type",
      path,
      message: `Invalid input: expected ${expected}, received undefined`,
    });
    return v;
  }
  // zod's `.nullable()` reports the inner type's issues directly.
  if (nonNull.length === 1) return check(nonNull[0], v, path, issues);
  const errors: Issue[][] = [];
  for (const alt of nonNull) {
    const inner: Issue[] = [];
    const out = check(alt, v, [], inner);
    if (!inner.length) return out;
    errors.push(inner);
  }
  issues.push({ code: "invalid_union", errors, path, message: "Invalid input" });
  return v;
}

function checkString(s: JsonSchema, v: string, path: (string | number)[], issues: Issue[]) {
  if (s.minLength !== undefined && v.length < s.minLength) {
    issues.push({
      origin: "string",
      code: "too_small",
      minimum: s.minLength,
      inclusive: true,
      path,
      message: `Too small: expected string to have >=${s.minLength} characters`,
    });
  }
  if (s.maxLength !== undefined && v.length > s.maxLength) {
    issues.push({
      origin: "string",
      code: "too_big",
      maximum: s.maxLength,
      inclusive: true,
      path,
      message: `Too big: expected string to have <=${s.maxLength} characters`,
    });
  }
  if (s.pattern !== undefined && !new RegExp(s.pattern).test(v)) {
    issues.push({
      origin: "string",
      code: "invalid_format",
      format: "regex",
      pattern: `/${s.pattern}/`,
      path,
      message: `Invalid string: must match pattern /${s.pattern}/`,
    });
  }
}

function checkNumber(s: JsonSchema, v: number, path: (string | number)[], issues: Issue[]) {
  const small = (min: number, inclusive: boolean) =>
    issues.push({
      origin: "number",
      code: "too_small",
      minimum: min,
      inclusive,
      path,
      message: `Too small: expected number to be ${inclusive ? ">=" : ">"}${min}`,
    });
  if (s.minimum !== undefined && v < s.minimum) small(s.minimum, true);
  if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) small(s.exclusiveMinimum, false);
  if (s.maximum !== undefined && v > s.maximum) {
    issues.push({
      origin: "number",
      code: "too_big",
      maximum: s.maximum,
      inclusive: true,
      path,
      message: `Too big: expected number to be <=${s.maximum}`,
    });
  }
}

function checkArray(s: JsonSchema, v: unknown[], path: (string | number)[], issues: Issue[]) {
  if (s.minItems !== undefined && v.length < s.minItems) {
    issues.push({
      origin: "array",
      code: "too_small",
      minimum: s.minItems,
      inclusive: true,
      path,
      message: `Too small: expected array to have >=${s.minItems} items`,
    });
  }
  if (!s.items) return v;
  return v.map((item, i) => check(s.items!, item, [...path, i], issues));
}

function checkObject(s: JsonSchema, v: object, path: (string | number)[], issues: Issue[]) {
  // Records (no declared properties) pass through untouched.
  if (!s.properties) return v;
  const input = v as Record<string, unknown>;
  const required = new Set(s.required ?? []);
  const out: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(s.properties)) {
    const value = input[key];
    if (value === undefined && !required.has(key) && prop.default === undefined) continue;
    const parsed = check(prop, value, [...path, key], issues);
    if (parsed !== undefined) out[key] = parsed;
  }
  return out;
}
