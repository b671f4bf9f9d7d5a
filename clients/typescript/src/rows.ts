// The seed store's row shapes (dates as `Date`, statuses in lower case,
// absent values as `null`) and their reading from the server's answers.
import type {
  ClaimRowFragment,
  ExecutionStatus as WireStatus,
  RecoveryRowFragment,
  RowFragment,
} from './generated/graphql.js';

export type ExecutionStatus = 'created' | 'running' | 'paused' | 'completed' | 'failed' | 'stopped';
export type ClaimStatus = 'active' | 'released' | 'expired';

export interface ExecutionOptions {
  breakpoints?: string[];
  debug?: boolean;
  execution?: { flowTimeoutMs?: number; maxConcurrency?: number; nodeTimeoutMs?: number };
  retry?: { maxAttempts?: number; backoffMs?: number; maxBackoffMs?: number };
  [key: string]: unknown;
}

/** An execution as the seed's `get` returns it, plus the fields execstore adds. */
export interface ExecutionRow {
  id: string;
  flowId: string;
  ownerId: string;
  rootExecutionId: string | null;
  parentExecutionId: string | null;
  status: ExecutionStatus;
  executionDepth: number;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  errorMessage: string | null;
  errorNodeId: string | null;
  options: ExecutionOptions | null;
  integration: object | null;
  externalEvents: object[] | null;
  failureCount: number;
  lastFailureReason: string | null;
  lastFailureAt: Date | null;
  processingStartedAt: Date | null;
  processingWorkerId: string | null;
  /** When it may first be handed out. */
  runAt: Date;
  /** −100…100, higher first. */
  priority: number;
  /** Paused (it, or an ancestor, by `pauseExecution`): not handed out. */
  paused: boolean;
  concurrencyKey: string | null;
  /** Its opaque position in the feeds (`getChildFeed`'s cursor). */
  cursor: string;
}

/** The seed's feed item is the execution's row. */
export type ChildFeedItem = ExecutionRow;

export interface ExecutionClaim {
  executionId: string;
  workerId: string;
  claimedAt: Date;
  expiresAt: Date;
  heartbeatAt: Date;
  status: ClaimStatus;
}

export interface RecoveryRecord {
  id: number;
  executionId: string;
  recoveredAt: Date;
  recoveredByWorker: string;
  recoveryReason: string;
  previousStatus: string | null;
  previousWorkerId: string | null;
}

export interface RootExecution {
  execution: ExecutionRow;
  /** The deepest depth below it (0 when it has no children). */
  levels: number;
  /** Its descendants, itself excluded. */
  totalNested: number;
  /** Its position in the flow's list, for `getRootExecutions(flowId, limit, after)`. */
  cursor: string;
}

export interface ExecutionTreeNode {
  id: string;
  parentId: string | null;
  level: number;
  execution: ExecutionRow;
}

export interface ExecutionStats {
  total: number;
  created: number;
  running: number;
  paused: number;
  completed: number;
  failed: number;
  stopped: number;
  maxDepth: number;
  firstCreatedAt: Date | null;
  lastCompletedAt: Date | null;
  completedPerMinute: number | null;
}

export const date = (text: string): Date => new Date(text);
export const maybeDate = (text: string | null | undefined): Date | null =>
  text === null || text === undefined ? null : new Date(text);
export const iso = (value: Date | null | undefined): string | null | undefined =>
  value === undefined ? undefined : value === null ? null : value.toISOString();

export const statusOf = (wire: WireStatus): ExecutionStatus => wire.toLowerCase() as ExecutionStatus;
export const wireStatus = (status: ExecutionStatus | WireStatus): WireStatus =>
  status.toUpperCase() as WireStatus;

export function rowOf(wire: RowFragment): ExecutionRow {
  return {
    id: wire.id,
    flowId: wire.flowId,
    ownerId: wire.ownerId,
    rootExecutionId: wire.rootExecutionId,
    parentExecutionId: wire.parentExecutionId,
    status: statusOf(wire.status),
    executionDepth: wire.executionDepth,
    createdAt: date(wire.createdAt),
    updatedAt: date(wire.updatedAt),
    startedAt: maybeDate(wire.startedAt),
    completedAt: maybeDate(wire.completedAt),
    errorMessage: wire.errorMessage,
    errorNodeId: wire.errorNodeId,
    options: (wire.options ?? null) as ExecutionOptions | null,
    integration: (wire.integration ?? null) as object | null,
    externalEvents: (wire.externalEvents ?? null) as object[] | null,
    failureCount: wire.failureCount,
    lastFailureReason: wire.lastFailureReason,
    lastFailureAt: maybeDate(wire.lastFailureAt),
    processingStartedAt: maybeDate(wire.processingStartedAt),
    processingWorkerId: wire.processingWorkerId,
    runAt: date(wire.runAt),
    priority: wire.priority,
    paused: wire.paused,
    concurrencyKey: wire.concurrencyKey,
    cursor: wire.cursor,
  };
}

export function claimOf(wire: ClaimRowFragment): ExecutionClaim {
  return {
    executionId: wire.executionId,
    workerId: wire.workerId,
    claimedAt: date(wire.claimedAt),
    expiresAt: date(wire.expiresAt),
    heartbeatAt: date(wire.heartbeatAt),
    status: wire.status.toLowerCase() as ClaimStatus,
  };
}

export function recoveryOf(wire: RecoveryRowFragment): RecoveryRecord {
  return {
    id: Number(wire.id),
    executionId: wire.executionId,
    recoveredAt: date(wire.recoveredAt),
    recoveredByWorker: wire.recoveredByWorker,
    recoveryReason: wire.recoveryReason,
    previousStatus: wire.previousStatus,
    previousWorkerId: wire.previousWorkerId,
  };
}
