/** tRPC-style errors: the HTTP status follows the tRPC code (dokploy-api.md §1). */

const STATUS: Record<string, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  INTERNAL_SERVER_ERROR: 500,
};

export type TrpcCode = keyof typeof STATUS;

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.status = STATUS[code] ?? 500;
  }
}

export function notFound(what: string): ApiError {
  return new ApiError("NOT_FOUND", `${what} not found`);
}

/** The tRPC code for an HTTP status (used for injected faults). */
export function codeForStatus(status: number): string {
  return Object.entries(STATUS).find(([, s]) => s === status)?.[0] ?? "INTERNAL_SERVER_ERROR";
}
