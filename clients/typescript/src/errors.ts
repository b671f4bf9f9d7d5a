/** An error the server answered, or a request that could not be made. */
export class ExecStoreError extends Error {
  /**
   * The server's `extensions.code` (`NOT_FOUND`, `CONFLICT`,
   * `BAD_USER_INPUT`, `EVENTS_EXPIRED`, …), or the client's own:
   * `NETWORK` (no answer: refused, reset, timed out) and `HTTP` (an answer
   * that is not GraphQL, with `status`).
   */
  readonly code: string;
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined;
  /** The GraphQL path of the error, when it has one. */
  readonly path: ReadonlyArray<string | number> | undefined;

  constructor(
    code: string,
    message: string,
    options: { status?: number; path?: ReadonlyArray<string | number>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ExecStoreError';
    this.code = code;
    this.status = options.status;
    this.path = options.path;
  }
}

/** The server's error objects, as they come in a GraphQL answer. */
export interface GraphQLErrorLike {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: { code?: string };
}

export function fromGraphQLError(error: GraphQLErrorLike, status?: number): ExecStoreError {
  return new ExecStoreError(error.extensions?.code ?? 'INTERNAL', error.message, {
    status,
    path: error.path,
  });
}
