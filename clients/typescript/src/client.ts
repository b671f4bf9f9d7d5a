import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

import { ExecStoreError } from './errors.js';
import { subscribe, type ExecutionEvent, type SubscribeOptions } from './events.js';
import * as ops from './generated/graphql.js';
import {
  claimOf,

  iso,
  maybeDate,
  recoveryOf,
  rowOf,
  wireStatus,
  type ChildFeedItem,
  type ExecutionClaim,
  type ExecutionRow,
  type ExecutionStats,
  type ExecutionStatus,
  type ExecutionTreeNode,
  type RecoveryRecord,
  type RootExecution,
} from './rows.js';
import type { Feed, IExecutionStore, NewExecution, UpdateExecutionStatusParams } from './store.js';
import { Transport, type ConnectionOptions } from './transport.js';

export interface ClientOptions extends ConnectionOptions {
  /**
   * Who holds the recovery locks this client takes: the seed's
   * `tryAcquireRecoveryLock(lockId)` has no holder (it was a session lock),
   * execstore's lock is a lease with one. Default: host, process and a
   * random suffix, one per client.
   */
  recoveryLockHolder?: string;
  /** How long a recovery lock is held unless renewed or released (default 60 s). */
  recoveryLockTtlMs?: number;
}

export interface ClaimNextOptions {
  workerId: string;
  /** The lease (1 ms to 24 h). */
  timeoutMs: number;
  flowId?: string | null;
  /** 1–100 (default 1). */
  limit?: number;
  /** Wait this long for work when none is claimable (default 0; the server's bound is 25 s). */
  waitMs?: number;
  signal?: AbortSignal;
}

export interface FinishInput {
  executionId: string;
  workerId: string;
  /** `completed`, `failed`, `stopped`, or `created` for a retry. */
  status: ExecutionStatus;
  errorMessage?: string | null;
  errorNodeId?: string | null;
  /** A retry's reason, kept as lastFailureReason. */
  failureReason?: string | null;
  /** A retry's wait instead of the backoff. */
  retryInMs?: number | null;
}

export interface FinishOutcome {
  executionId: string;
  finished: boolean;
  /** Why not: `NOT_FOUND`, `CONFLICT` (no live claim held by the worker), … */
  code: string | null;
}

export interface ClaimExtension {
  executionId: string;
  extended: boolean;
  expiresAt: Date | null;
  /** `CANCELLED` when the execution was cancelled: stop working on it. */
  code: string | null;
}

export interface ConcurrencyLimit {
  key: string;
  limit: number;
  running: number;
}

const CHILDREN_PAGE = 1_000;

function updateInput(params: UpdateExecutionStatusParams): ops.UpdateExecutionStatusInput {
  return {
    executionId: params.executionId,
    status: wireStatus(params.status),
    errorMessage: params.errorMessage,
    errorNodeId: params.errorNodeId,
    startedAt: iso(params.startedAt),
    completedAt: iso(params.completedAt),
    processingStartedAt: iso(params.processingStartedAt),
    processingWorkerId: params.processingWorkerId,
    failureCount: params.failureCount,
    lastFailureReason: params.lastFailureReason,
    lastFailureAt: iso(params.lastFailureAt),
  };
}

function createInput(row: NewExecution): ops.CreateExecutionInput {
  return {
    id: row.id,
    flowId: row.flowId,
    ownerId: row.ownerId,
    parentExecutionId: row.parentExecutionId,
    status: row.status === undefined ? undefined : wireStatus(row.status),
    options: row.options,
    integration: row.integration,
    externalEvents: row.externalEvents,
    runAt: iso(row.runAt),
    priority: row.priority,
    concurrencyKey: row.concurrencyKey,
  };
}

/** The fields of a seed row that a create does not write. */
function laterFields(row: NewExecution): boolean {
  return (
    row.startedAt != null ||
    row.completedAt != null ||
    row.errorMessage != null ||
    row.errorNodeId != null ||
    (row.failureCount ?? 0) > 0 ||
    row.lastFailureReason != null ||
    row.lastFailureAt != null ||
    row.processingStartedAt != null ||
    row.processingWorkerId != null
  );
}

function feedOf(connection: { nodes: ops.RowFragment[]; pageInfo: ops.PageFragment }): Feed {
  return {
    items: connection.nodes.map(rowOf),
    nextCursor: connection.pageInfo.hasNextPage ? (connection.pageInfo.endCursor ?? null) : null,
  };
}

/** NOT_FOUND as `false`, for the seed methods that answered a boolean. */
async function foundOr<T>(work: Promise<T>, absent: T): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof ExecStoreError && error.code === 'NOT_FOUND') return absent;
    throw error;
  }
}

/**
 * The seed store's interface over execstore's GraphQL API, and what
 * execstore adds: batches, pulls with a wait, finishing, run control, live
 * events.
 */
export class ExecStoreClient implements IExecutionStore {
  readonly transport: Transport;
  readonly recoveryLockHolder: string;
  private readonly recoveryLockTtlMs: number;

  constructor(options: ClientOptions) {
    this.transport = new Transport(options);
    this.recoveryLockHolder =
      options.recoveryLockHolder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.recoveryLockTtlMs = options.recoveryLockTtlMs ?? 60_000;
  }

  /** Any operation of the schema, typed by its document. */
  request<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
    return this.transport.request(document, variables);
  }

  // --- the seed's methods -------------------------------------------------

  async create(row: NewExecution): Promise<void> {
    await this.transport.request(ops.CreateDocument, { input: createInput(row) });
    if (laterFields(row)) {
      const id = row.id;
      if (id === undefined) {
        throw new ExecStoreError('BAD_USER_INPUT', 'a row with processing or failure fields needs its id');
      }
      await this.updateExecutionStatus({
        executionId: id,
        status: row.status ?? 'created',
        startedAt: row.startedAt,
        completedAt: row.completedAt,
        errorMessage: row.errorMessage,
        errorNodeId: row.errorNodeId,
        failureCount: row.failureCount,
        lastFailureReason: row.lastFailureReason,
        lastFailureAt: row.lastFailureAt,
        processingStartedAt: row.processingStartedAt,
        processingWorkerId: row.processingWorkerId,
      });
    }
  }

  async get(id: string): Promise<ExecutionRow | null> {
    const { execution } = await this.transport.request(ops.GetDocument, { id });
    return execution ? rowOf(execution) : null;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.transport.request(ops.DeleteDocument, { id })).deleteExecution;
  }

  async updateExecutionStatus(params: UpdateExecutionStatusParams): Promise<boolean> {
    const update = this.transport.request(ops.UpdateStatusDocument, { input: updateInput(params) });
    return foundOr(update.then(() => true), false);
  }

  async updateFailureInfo(executionId: string, failureCount: number, reason: string): Promise<boolean> {
    const update = this.transport.request(ops.UpdateFailureInfoDocument, { executionId, failureCount, reason });
    return foundOr(update.then((r) => r.updateFailureInfo), false);
  }

  async claimExecution(executionId: string, workerId: string, timeoutMs: number): Promise<boolean> {
    return (await this.claim(executionId, workerId, timeoutMs)).acquired;
  }

  async extendClaim(executionId: string, workerId: string, timeoutMs: number): Promise<boolean> {
    return (await this.transport.request(ops.ExtendClaimDocument, { executionId, workerId, timeoutMs })).extendClaim;
  }

  async releaseExecution(executionId: string, workerId: string): Promise<void> {
    await this.release(executionId, workerId);
  }

  async expireOldClaims(): Promise<number> {
    return (await this.transport.request(ops.ExpireOldClaimsDocument, {})).expireOldClaims;
  }

  async getActiveClaims(): Promise<ExecutionClaim[]> {
    return (await this.transport.request(ops.ActiveClaimsDocument, {})).activeClaims.map(claimOf);
  }

  async getClaimForExecution(executionId: string): Promise<ExecutionClaim | null> {
    const { claim } = await this.transport.request(ops.ClaimDocument, { executionId });
    return claim ? claimOf(claim) : null;
  }

  /** Every direct child, oldest first (read in pages of 1,000). */
  async getChildExecutions(parentId: string): Promise<ExecutionRow[]> {
    const children: ExecutionRow[] = [];
    let after: string | null = null;
    for (;;) {
      const answer: ops.ChildrenQuery = await this.transport.request(ops.ChildrenDocument, {
        id: parentId,
        first: CHILDREN_PAGE,
        after,
      });
      const page: ops.RowFragment[] = answer.execution?.children ?? [];
      children.push(...page.map(rowOf));
      if (page.length < CHILDREN_PAGE) return children;
      after = page[page.length - 1]!.cursor;
    }
  }

  /**
   * The direct children of every parent, parent by parent in the order
   * given, each oldest first; the parents' reads go in batch requests of 16
   * (one round trip each).
   */
  async batchGetDirectChildren(parentIds: string[]): Promise<ChildFeedItem[]> {
    const unique = [...new Set(parentIds)];
    const pages = await this.transport.batch(
      ops.ChildrenDocument,
      unique.map((id) => ({ id, first: CHILDREN_PAGE, after: null })),
    );
    const children: ChildFeedItem[] = [];
    for (const [at, page] of pages.entries()) {
      const rows = page.execution?.children ?? [];
      children.push(...rows.map(rowOf));
      if (rows.length === CHILDREN_PAGE) {
        const rest = await this.getChildExecutions(unique[at]!);
        children.push(...rest.slice(CHILDREN_PAGE));
      }
    }
    return children;
  }

  async getChildFeed(rootExecutionId: string, limit: number, cursor?: string | null): Promise<Feed> {
    const { childFeed } = await this.transport.request(ops.ChildFeedDocument, {
      rootExecutionId,
      first: limit,
      after: cursor ?? null,
    });
    return feedOf(childFeed);
  }

  async getDirectChildFeed(parentExecutionId: string, limit: number, cursor?: string | null): Promise<Feed> {
    const { directChildFeed } = await this.transport.request(ops.DirectChildFeedDocument, {
      parentExecutionId,
      first: limit,
      after: cursor ?? null,
    });
    return feedOf(directChildFeed);
  }

  async getRootExecutions(flowId: string, limit = 50, after?: string | null): Promise<RootExecution[]> {
    const { rootExecutions } = await this.transport.request(ops.RootExecutionsDocument, {
      flowId,
      first: limit,
      after: after ?? null,
    });
    return rootExecutions.edges.map((edge) => ({
      execution: rowOf(edge.node.execution),
      levels: edge.node.levels,
      totalNested: edge.node.totalNested,
      cursor: edge.cursor,
    }));
  }

  async getExecutionTree(executionId: string): Promise<ExecutionTreeNode[]> {
    const { executionTree } = await this.transport.request(ops.ExecutionTreeDocument, { executionId });
    return executionTree.map((node) => ({
      id: node.id,
      parentId: node.parentId,
      level: node.level,
      execution: rowOf(node.execution),
    }));
  }

  async getExecutionStats(rootExecutionId: string): Promise<ExecutionStats> {
    const { executionStats: s } = await this.transport.request(ops.ExecutionStatsDocument, { rootExecutionId });
    return { ...s, firstCreatedAt: maybeDate(s.firstCreatedAt), lastCompletedAt: maybeDate(s.lastCompletedAt) };
  }

  async getExecutionsNeedingRecovery(limit = 1000): Promise<ExecutionRow[]> {
    const { executionsNeedingRecovery } = await this.transport.request(ops.NeedingRecoveryDocument, { limit });
    return executionsNeedingRecovery.map(rowOf);
  }

  async recordRecovery(
    executionId: string,
    workerId: string,
    reason: string,
    previousStatus?: string,
    previousWorkerId?: string,
  ): Promise<void> {
    await this.transport.request(ops.RecordRecoveryDocument, {
      input: { executionId, workerId, reason, previousStatus, previousWorkerId },
    });
  }

  async getRecoveryHistory(executionId: string): Promise<RecoveryRecord[]> {
    const { recoveryHistory } = await this.transport.request(ops.RecoveryHistoryDocument, { executionId });
    return recoveryHistory.map(recoveryOf);
  }

  /** A lease held by `recoveryLockHolder` for `recoveryLockTtlMs`; taking it again renews it. */
  async tryAcquireRecoveryLock(lockId: number): Promise<boolean> {
    const { tryAcquireRecoveryLock } = await this.transport.request(ops.TryAcquireRecoveryLockDocument, {
      lockId,
      holderId: this.recoveryLockHolder,
      ttlMs: this.recoveryLockTtlMs,
    });
    return tryAcquireRecoveryLock;
  }

  async releaseRecoveryLock(lockId: number): Promise<void> {
    await this.transport.request(ops.ReleaseRecoveryLockDocument, { lockId, holderId: this.recoveryLockHolder });
  }

  // --- beyond the seed ----------------------------------------------------

  /** `claimExecution` with the server's whole answer: the claim, or why not. */
  async claim(
    executionId: string,
    workerId: string,
    timeoutMs: number,
  ): Promise<{ acquired: boolean; rejection: string | null; claim: ExecutionClaim | null }> {
    const { claimExecution } = await this.transport.request(ops.ClaimExecutionDocument, {
      executionId,
      workerId,
      timeoutMs,
    });
    return {
      acquired: claimExecution.acquired,
      rejection: claimExecution.rejection,
      claim: claimExecution.claim ? claimOf(claimExecution.claim) : null,
    };
  }

  /** `releaseExecution` with the server's answer: false when the worker held no claim. */
  async release(executionId: string, workerId: string): Promise<boolean> {
    return (await this.transport.request(ops.ReleaseDocument, { executionId, workerId })).releaseExecution;
  }

  /** Creates (or upserts) all of `rows` in one statement group: all or none. */
  async createMany(rows: NewExecution[]): Promise<ExecutionRow[]> {
    const { createExecutions } = await this.transport.request(ops.CreateManyDocument, {
      inputs: rows.map(createInput),
    });
    return createExecutions.map(rowOf);
  }

  /** Pulls work: claims up to `limit` due executions, waiting up to `waitMs` for some. */
  async claimNext(options: ClaimNextOptions): Promise<ExecutionRow[]> {
    const waitMs = options.waitMs ?? 0;
    const { claimNextExecutions } = await this.transport.request(
      ops.ClaimNextDocument,
      {
        workerId: options.workerId,
        timeoutMs: options.timeoutMs,
        flowId: options.flowId ?? null,
        limit: options.limit ?? 1,
        waitMs,
      },
      { extraTimeoutMs: waitMs, signal: options.signal },
    );
    return claimNextExecutions.map(rowOf);
  }

  /** Heartbeats every one of `executionIds` the worker holds, in one request. */
  async extendClaims(workerId: string, executionIds: string[], timeoutMs: number): Promise<ClaimExtension[]> {
    const { extendClaims } = await this.transport.request(ops.ExtendClaimsDocument, {
      workerId,
      executionIds,
      timeoutMs,
    });
    return extendClaims.map((e) => ({ ...e, expiresAt: maybeDate(e.expiresAt) }));
  }

  /** Ends (or retries, with `status: 'created'`) an execution the worker holds, and lets its claim go. */
  async finishExecution(input: FinishInput): Promise<ExecutionRow> {
    const { finishExecution } = await this.transport.request(ops.FinishDocument, {
      input: { ...input, status: wireStatus(input.status) },
    });
    return rowOf(finishExecution);
  }

  /** Many finishes in one request; each succeeds or fails alone. */
  async finishExecutions(inputs: FinishInput[]): Promise<FinishOutcome[]> {
    const { finishExecutions } = await this.transport.request(ops.FinishManyDocument, {
      inputs: inputs.map((input) => ({ ...input, status: wireStatus(input.status) })),
    });
    return finishExecutions;
  }

  /** Stops an execution and everything below it; how many it stopped. */
  async cancelExecution(id: string, reason?: string | null): Promise<number> {
    return (await this.transport.request(ops.CancelDocument, { id, reason })).cancelExecution;
  }

  async pauseExecution(id: string): Promise<number> {
    return (await this.transport.request(ops.PauseDocument, { id })).pauseExecution;
  }

  async resumeExecution(id: string): Promise<number> {
    return (await this.transport.request(ops.ResumeDocument, { id })).resumeExecution;
  }

  /** Puts the run's executions of `statuses` (default: failed) back in the queue. */
  async retryExecutions(rootExecutionId: string, statuses: ExecutionStatus[] = ['failed']): Promise<number> {
    const { retryExecutions } = await this.transport.request(ops.RetryDocument, {
      rootExecutionId,
      status: statuses.map(wireStatus),
    });
    return retryExecutions;
  }

  /** Sets (or, with `null`, removes) a concurrency key's limit (admin). */
  async setConcurrencyLimit(key: string, limit: number | null): Promise<ConcurrencyLimit | null> {
    return (await this.transport.request(ops.SetConcurrencyLimitDocument, { key, limit })).setConcurrencyLimit;
  }

  async getConcurrencyLimits(): Promise<ConcurrencyLimit[]> {
    return (await this.transport.request(ops.ConcurrencyLimitsDocument, {})).concurrencyLimits;
  }

  /** The event log's position now: load a run, then `subscribe(root, { after })` from it. */
  async eventCursor(): Promise<string> {
    return (await this.transport.request(ops.EventCursorDocument, {})).eventCursor;
  }

  /** The run's events as an async iterator, resumed across dropped connections. */
  subscribe(rootExecutionId: string, options: SubscribeOptions = {}): AsyncGenerator<ExecutionEvent, void, undefined> {
    return subscribe(this.transport, rootExecutionId, options);
  }
}


