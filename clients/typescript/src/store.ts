// The seed store's interface (fireflow-executor's `IExecutionStore`), method
// for method, as this client implements it. Where execstore corrects the
// seed the signature says so: feed and root cursors are the opaque strings
// the results carry (a bare date skipped or repeated rows sharing it).
import type {
  ChildFeedItem,
  ExecutionClaim,
  ExecutionOptions,
  ExecutionRow,
  ExecutionStats,
  ExecutionStatus,
  ExecutionTreeNode,
  RecoveryRecord,
  RootExecution,
} from './rows.js';

/** What `create` takes: the seed's row, of which the server keeps what is writable. */
export interface NewExecution {
  id?: string;
  flowId: string;
  ownerId: string;
  parentExecutionId?: string | null;
  status?: ExecutionStatus;
  options?: ExecutionOptions | null;
  integration?: object | null;
  externalEvents?: object[] | null;
  /** Later first hand-out (execstore). */
  runAt?: Date | null;
  /** −100…100, higher first (execstore). */
  priority?: number | null;
  /** The concurrency key it counts against (execstore). */
  concurrencyKey?: string | null;
  // The seed's row carries these too. The server stamps createdAt and
  // updatedAt and derives rootExecutionId and executionDepth from the
  // parent, so those are ignored; the others, when set, are written by one
  // updateExecutionStatus right after the create.
  createdAt?: Date;
  updatedAt?: Date;
  rootExecutionId?: string | null;
  executionDepth?: number;
  startedAt?: Date | null;
  completedAt?: Date | null;
  errorMessage?: string | null;
  errorNodeId?: string | null;
  failureCount?: number;
  lastFailureReason?: string | null;
  lastFailureAt?: Date | null;
  processingStartedAt?: Date | null;
  processingWorkerId?: string | null;
}

export interface UpdateExecutionStatusParams {
  executionId: string;
  status: ExecutionStatus;
  errorMessage?: string | null;
  errorNodeId?: string | null;
  startedAt?: Date | null;
  completedAt?: Date | null;
  processingStartedAt?: Date | null;
  processingWorkerId?: string | null;
  failureCount?: number | null;
  lastFailureReason?: string | null;
  lastFailureAt?: Date | null;
}

export interface Feed {
  items: ChildFeedItem[];
  /** The cursor of the next page; null on the last. */
  nextCursor: string | null;
}

export interface IExecutionStore {
  create(row: NewExecution): Promise<void>;
  get(id: string): Promise<ExecutionRow | null>;
  delete(id: string): Promise<boolean>;
  updateExecutionStatus(params: UpdateExecutionStatusParams): Promise<boolean>;
  updateFailureInfo(executionId: string, failureCount: number, reason: string): Promise<boolean>;
  claimExecution(executionId: string, workerId: string, timeoutMs: number): Promise<boolean>;
  extendClaim(executionId: string, workerId: string, timeoutMs: number): Promise<boolean>;
  releaseExecution(executionId: string, workerId: string): Promise<void>;
  expireOldClaims(): Promise<number>;
  getActiveClaims(): Promise<ExecutionClaim[]>;
  getClaimForExecution(executionId: string): Promise<ExecutionClaim | null>;
  getChildExecutions(parentId: string): Promise<ExecutionRow[]>;
  batchGetDirectChildren(parentIds: string[]): Promise<ChildFeedItem[]>;
  getChildFeed(rootExecutionId: string, limit: number, cursor?: string | null): Promise<Feed>;
  getDirectChildFeed(parentExecutionId: string, limit: number, cursor?: string | null): Promise<Feed>;
  getRootExecutions(flowId: string, limit?: number, after?: string | null): Promise<RootExecution[]>;
  getExecutionTree(executionId: string): Promise<ExecutionTreeNode[]>;
  getExecutionStats(rootExecutionId: string): Promise<ExecutionStats>;
  getExecutionsNeedingRecovery(limit?: number): Promise<ExecutionRow[]>;
  recordRecovery(
    executionId: string,
    workerId: string,
    reason: string,
    previousStatus?: string,
    previousWorkerId?: string,
  ): Promise<void>;
  getRecoveryHistory(executionId: string): Promise<RecoveryRecord[]>;
  tryAcquireRecoveryLock(lockId: number): Promise<boolean>;
  releaseRecoveryLock(lockId: number): Promise<void>;
}
