export { ExecStoreClient } from './client.js';
export type {
  ClaimExtension,
  ClaimNextOptions,
  ClientOptions,
  ConcurrencyLimit,
  FinishInput,
  FinishOutcome,
} from './client.js';
export { ExecStoreError } from './errors.js';
export type { ExecutionEvent, ExecutionEventKind, SubscribeOptions } from './events.js';
export type {
  ChildFeedItem,
  ClaimStatus,
  ExecutionClaim,
  ExecutionOptions,
  ExecutionRow,
  ExecutionStats,
  ExecutionStatus,
  ExecutionTreeNode,
  RecoveryRecord,
  RootExecution,
} from './rows.js';
export type { Feed, IExecutionStore, NewExecution, UpdateExecutionStatusParams } from './store.js';
export type { ConnectionOptions } from './transport.js';
export { Worker } from './worker.js';
export type { HandlerContext, HandlerResult, WorkerOptions } from './worker.js';
