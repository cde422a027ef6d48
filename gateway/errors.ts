/**
 * One error type for the whole gateway: a code clients can branch on, the HTTP status REST answers
 * with, the field at fault when there is one, and a message that says what to do. GraphQL carries
 * the code and field in `extensions`; REST returns `{ error: { code, message, field } }`.
 */
export const ERROR_STATUS = {
  INVALID_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "GatewayError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) };
  }
}

export const invalid = (field: string, message: string) =>
  new GatewayError("INVALID_INPUT", `${field}: ${message}`, field);
export const notFound = (what: string) =>
  new GatewayError("NOT_FOUND", `${what} does not exist or is not visible to you`);
export const forbidden = (message: string) => new GatewayError("FORBIDDEN", message);
