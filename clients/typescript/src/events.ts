// Live events of one run over graphql-ws, resumed from the last cursor
// after a dropped connection: the server replays from its event log what
// was committed while the connection was down, so the stream has no gap and
// no repeat.
import { createClient, type Client } from 'graphql-ws';
import { print } from 'graphql';
import WebSocket from 'ws';

import { ExecStoreError, fromGraphQLError, type GraphQLErrorLike } from './errors.js';
import { EventsDocument, type EventsSubscription } from './generated/graphql.js';
import { rowOf, type ExecutionRow } from './rows.js';
import type { Transport } from './transport.js';

export type ExecutionEventKind = 'created' | 'updated' | 'deleted';

export interface ExecutionEvent {
  kind: ExecutionEventKind;
  executionId: string;
  /** Where the stream is: `subscribe(rootId, { after: event.cursor })` resumes after it. */
  cursor: string;
  /** The execution as it is now; null when deleted. */
  execution: ExecutionRow | null;
}

export interface SubscribeOptions {
  /** Resume after this event's cursor (or an `eventCursor()`); without it, from now. */
  after?: string | null;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /** Longest wait between reconnection attempts (default 5 s); the first is after 100 ms. */
  maxReconnectDelayMs?: number;
  /** Called each time the connection dropped and is being made again. */
  onReconnect?: (error: unknown) => void;
}

const QUERY = print(EventsDocument);

export function webSocketUrl(httpUrl: string): string {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/$/, '')}/ws`;
  return url.toString();
}

function codedErrors(value: unknown): GraphQLErrorLike[] | undefined {
  if (Array.isArray(value) && value.length > 0 && typeof value[0]?.message === 'string') {
    return value as GraphQLErrorLike[];
  }
  return undefined;
}

/**
 * An async iterator of the run's events. A dropped connection (a restart,
 * a network cut) is made again, with growing delays, and the subscription
 * resumed after the last event delivered; errors the server answers end it
 * by throwing an `ExecStoreError` — `EVENTS_EXPIRED` when the cursor is
 * older than the server's event log keeps (reload the run, then subscribe
 * from a fresh `eventCursor()`).
 */
export async function* subscribe(
  transport: Transport,
  rootExecutionId: string,
  options: SubscribeOptions = {},
): AsyncGenerator<ExecutionEvent, void, undefined> {
  let after = options.after ?? null;
  let delay = 100;
  const maxDelay = options.maxReconnectDelayMs ?? 5_000;
  while (!options.signal?.aborted) {
    const authorization = await transport.authorization();
    const client: Client = createClient({
      url: webSocketUrl(transport.url),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      connectionParams: authorization ? { authorization } : undefined,
    });
    const iterator = client.iterate<EventsSubscription>({
      query: QUERY,
      variables: { rootExecutionId, after },
    });
    const stop = () => void iterator.return?.();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const result of iterator) {
        const errors = codedErrors(result.errors);
        if (errors) throw fromGraphQLError(errors[0]!);
        const event = result.data?.executionEvents;
        if (!event) continue;
        delay = 100;
        after = event.cursor;
        yield {
          kind: event.kind.toLowerCase() as ExecutionEventKind,
          executionId: event.executionId,
          cursor: event.cursor,
          execution: event.execution ? rowOf(event.execution) : null,
        };
      }
      if (options.signal?.aborted) return;
      // The server completed the stream (it is shutting down): resume.
    } catch (error) {
      if (error instanceof ExecStoreError) throw error;
      const errors = codedErrors(error);
      if (errors) throw fromGraphQLError(errors[0]!);
      if (options.signal?.aborted) return;
      // graphql-ws closes with 4xxx for what retrying cannot mend (a token
      // refused at connection_init, a protocol error).
      const closed = (error as { code?: unknown; reason?: unknown } | null)?.code;
      if (typeof closed === 'number' && closed >= 4400 && closed < 4500) {
        const code = closed === 4401 || closed === 4403 ? 'UNAUTHENTICATED' : 'PROTOCOL';
        throw new ExecStoreError(code, `the server closed the subscription: ${closed} ${String((error as { reason?: unknown }).reason ?? '')}`);
      }
      options.onReconnect?.(error);
    } finally {
      options.signal?.removeEventListener('abort', stop);
      await client.dispose();
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, maxDelay);
  }
}
