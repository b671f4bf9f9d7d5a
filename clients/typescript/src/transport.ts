import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode, type OperationDefinitionNode } from 'graphql';

import { ExecStoreError, fromGraphQLError, type GraphQLErrorLike } from './errors.js';

/** Where the server is and how to talk to it. */
export interface ConnectionOptions {
  /** The server's GraphQL endpoint, `http://127.0.0.1:8080/graphql`. */
  url: string;
  /** A bearer token, or a function giving the current one (asked before every request). */
  token?: string | (() => string | Promise<string>);
  /** How long one request may take before it fails with `NETWORK` (default 30 s). */
  timeoutMs?: number;
  /**
   * How many times a query (never a mutation) is sent again after a network
   * error or a timeout (default 2): a mutation that got no answer may have
   * been applied, so it is the caller's to decide.
   */
  retries?: number;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

interface Answer<R> {
  data?: R | null;
  errors?: GraphQLErrorLike[];
}

const printed = new WeakMap<DocumentNode, { query: string; isQuery: boolean }>();

function textOf(document: DocumentNode): { query: string; isQuery: boolean } {
  let known = printed.get(document);
  if (!known) {
    const operation = document.definitions.find(
      (d): d is OperationDefinitionNode => d.kind === 'OperationDefinition',
    );
    known = { query: print(document), isQuery: operation?.operation === 'query' };
    printed.set(document, known);
  }
  return known;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends typed operations over HTTP; one per request, or several in one batch. */
export class Transport {
  readonly url: string;
  private readonly options: ConnectionOptions;
  private readonly fetch: typeof fetch;

  constructor(options: ConnectionOptions) {
    this.options = options;
    this.url = options.url;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** The `Authorization` header's value, if any. */
  async authorization(): Promise<string | undefined> {
    const token = this.options.token;
    if (token === undefined) return undefined;
    return `Bearer ${typeof token === 'function' ? await token() : token}`;
  }

  /** One operation; its `data`, or the first error as an `ExecStoreError`. */
  async request<R, V>(
    document: TypedDocumentNode<R, V>,
    variables: V,
    options: { extraTimeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<R> {
    const { query, isQuery } = textOf(document);
    const answer = await this.send<Answer<R>>(
      { query, variables },
      isQuery,
      options,
    );
    return dataOf(answer);
  }

  /**
   * The same operation with each of `variables`, in batch requests of at
   * most `chunk` (the server's `EXECSTORE_MAX_BATCH`, 16 by default): one
   * round trip per chunk. Results in the order asked.
   */
  async batch<R, V>(document: TypedDocumentNode<R, V>, variables: V[], chunk = 16): Promise<R[]> {
    const { query, isQuery } = textOf(document);
    const results: R[] = [];
    for (let at = 0; at < variables.length; at += chunk) {
      const body = variables.slice(at, at + chunk).map((v) => ({ query, variables: v }));
      const answers = await this.send<Answer<R>[] | Answer<R>>(body, isQuery, {});
      if (!Array.isArray(answers)) {
        dataOf(answers); // a batch refused as a whole throws its error here
        throw new ExecStoreError('HTTP', 'a batch request was not answered with a batch');
      }
      for (const answer of answers) results.push(dataOf(answer));
    }
    return results;
  }

  private async send<T>(
    body: unknown,
    retryable: boolean,
    options: { extraTimeoutMs?: number; signal?: AbortSignal },
  ): Promise<T> {
    const retries = retryable ? (this.options.retries ?? 2) : 0;
    const timeoutMs = (this.options.timeoutMs ?? 30_000) + (options.extraTimeoutMs ?? 0);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
      };
      const authorization = await this.authorization();
      if (authorization) headers.authorization = authorization;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
      let response: Response;
      let text: string;
      try {
        response = await this.fetch(this.url, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal,
        });
        text = await response.text();
      } catch (cause) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (attempt < retries) {
          await pause(100 * 2 ** attempt);
          continue;
        }
        const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : String(cause);
        throw new ExecStoreError('NETWORK', `${this.url}: ${why}`, { cause });
      }
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ExecStoreError('HTTP', `${response.status} from ${this.url}: ${text.slice(0, 200)}`, {
          status: response.status,
        });
      }
    }
  }
}

function dataOf<R>(answer: Answer<R>): R {
  if (answer.errors && answer.errors.length > 0) throw fromGraphQLError(answer.errors[0]!);
  if (answer.data === undefined || answer.data === null) {
    throw new ExecStoreError('INTERNAL', 'an answer without data or errors');
  }
  return answer.data;
}
