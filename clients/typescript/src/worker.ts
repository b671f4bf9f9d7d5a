// A worker that runs itself: the batched round of execstore's README (pull
// with a wait, heartbeat everything held in one request, finish in one
// request), with handlers that are told when their claim is gone, and a
// stop that leaves nothing held.
import type { ExecStoreClient, FinishInput, FinishOutcome } from './client.js';
import { ExecStoreError } from './errors.js';
import type { ExecutionRow, ExecutionStatus } from './rows.js';

export interface HandlerContext {
  /**
   * Aborted when the execution is no longer this worker's: its claim was
   * lost (it lapsed, or someone released it), it was cancelled (reason
   * code `CANCELLED`), or the worker is stopping and the grace period ran
   * out. Whatever the handler returns after that is not reported.
   */
  signal: AbortSignal;
  workerId: string;
  /** 1 on the first run, then one more per failure recorded. */
  attempt: number;
}

/**
 * Nothing (or `{}`): the execution completed. A status to end it otherwise
 * (`failed` or `stopped`, with a message). A thrown error is a retry: the
 * execution goes back to the queue with the error's message as its
 * failure reason, after the server's backoff, until its attempts run out.
 */
export type HandlerResult = void | {
  status?: Extract<ExecutionStatus, 'completed' | 'failed' | 'stopped'>;
  errorMessage?: string | null;
  errorNodeId?: string | null;
};

export interface WorkerOptions {
  workerId: string;
  /** Only this flow's executions (default: any). */
  flowId?: string | null;
  /** Handlers running at once (default 8). */
  concurrency?: number;
  handler: (execution: ExecutionRow, context: HandlerContext) => Promise<HandlerResult>;
  /** The lease of each claim (default 30 s). */
  leaseMs?: number;
  /** How often everything held is heartbeaten (default a third of the lease). */
  heartbeatMs?: number;
  /** How long a pull waits for work when there is none (default 5 s; at most the server's 25 s). */
  waitMs?: number;
  /** How long `stop()` waits for running handlers before releasing their executions (default 10 s). */
  graceMs?: number;
  /** Stop on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  onClaim?: (execution: ExecutionRow) => void;
  onFinish?: (execution: ExecutionRow, outcome: FinishOutcome & { status: ExecutionStatus }) => void;
  onError?: (error: unknown, execution?: ExecutionRow) => void;
}

interface Held {
  execution: ExecutionRow;
  controller: AbortController;
  /** The handler has returned; its finish is queued or in flight. */
  finishing: boolean;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Worker {
  private readonly client: ExecStoreClient;
  private readonly options: Required<Pick<WorkerOptions, 'concurrency' | 'leaseMs' | 'heartbeatMs' | 'waitMs' | 'graceMs'>> &
    WorkerOptions;
  private readonly held = new Map<string, Held>();
  private readonly finishes: { execution: ExecutionRow; input: FinishInput; attempts: number }[] = [];
  private flushing: Promise<void> | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private slotFreed: (() => void) | null = null;
  private pull: AbortController | null = null;
  private stopped: Promise<void> | null = null;
  private readonly onSignal = () => void this.stop();

  constructor(client: ExecStoreClient, options: WorkerOptions) {
    const leaseMs = options.leaseMs ?? 30_000;
    this.client = client;
    this.options = {
      concurrency: 8,
      waitMs: 5_000,
      graceMs: 10_000,
      ...options,
      leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3)),
    };
  }

  /** Executions held now (running or being finished). */
  get holding(): number {
    return this.held.size;
  }

  /** Runs until `stop()` (or SIGTERM); resolves once stopped. */
  start(): Promise<void> {
    if (!this.loop) {
      if (this.options.handleSignals !== false) {
        process.on('SIGTERM', this.onSignal);
        process.on('SIGINT', this.onSignal);
      }
      this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs);
      this.loop = this.pullLoop();
    }
    return this.loop.then(() => this.stopped ?? Promise.resolve());
  }

  /**
   * Stops pulling, lets running handlers finish for up to `graceMs`, then
   * aborts the others and releases their executions; resolves when nothing
   * is held. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private running(): number {
    let n = 0;
    for (const held of this.held.values()) if (!held.finishing) n++;
    return n;
  }

  private async pullLoop(): Promise<void> {
    let backoff = 100;
    while (!this.stopping) {
      const free = this.options.concurrency - this.running();
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      this.pull = new AbortController();
      let batch: ExecutionRow[];
      try {
        batch = await this.client.claimNext({
          workerId: this.options.workerId,
          timeoutMs: this.options.leaseMs,
          flowId: this.options.flowId,
          limit: Math.min(free, 100),
          waitMs: this.options.waitMs,
          signal: this.pull.signal,
        });
        backoff = 100;
      } catch (error) {
        if (this.stopping) break;
        this.options.onError?.(error);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
        continue;
      } finally {
        this.pull = null;
      }
      if (this.stopping) {
        await Promise.all(batch.map((execution) => this.releaseQuietly(execution)));
        break;
      }
      for (const execution of batch) this.run(execution);
    }
  }

  private run(execution: ExecutionRow): void {
    const controller = new AbortController();
    const held: Held = { execution, controller, finishing: false, done: Promise.resolve() };
    this.held.set(execution.id, held);
    this.options.onClaim?.(execution);
    const context: HandlerContext = {
      signal: controller.signal,
      workerId: this.options.workerId,
      attempt: execution.failureCount + 1,
    };
    held.done = Promise.resolve()
      .then(() => this.options.handler(execution, context))
      .then(
        (result) => {
          if (controller.signal.aborted) return;
          this.finish(held, {
            executionId: execution.id,
            workerId: this.options.workerId,
            status: result?.status ?? 'completed',
            errorMessage: result?.errorMessage,
            errorNodeId: result?.errorNodeId,
          });
        },
        (error: unknown) => {
          if (controller.signal.aborted) return;
          const message = error instanceof Error ? error.message : String(error);
          this.options.onError?.(error, execution);
          this.finish(held, {
            executionId: execution.id,
            workerId: this.options.workerId,
            status: 'created',
            failureReason: message || 'the handler failed',
          });
        },
      );
  }

  private freeSlot(): void {
    const wake = this.slotFreed;
    this.slotFreed = null;
    wake?.();
  }

  private finish(held: Held, input: FinishInput): void {
    held.finishing = true;
    this.finishes.push({ execution: held.execution, input, attempts: 0 });
    this.freeSlot();
    this.flushing ??= this.flush();
  }

  /** Sends every queued finish in one `finishExecutions`, again while more are queued. */
  private async flush(): Promise<void> {
    try {
      while (this.finishes.length > 0) {
        const batch = this.finishes.splice(0, 1_000);
        let outcomes: FinishOutcome[];
        try {
          outcomes = await this.client.finishExecutions(batch.map((f) => f.input));
        } catch (error) {
          this.options.onError?.(error);
          // Sent again (a finish that did land answers CONFLICT the second
          // time: taken as done); the lease bounds how long it stays held.
          const again = batch.filter((f) => ++f.attempts < 3);
          for (const f of batch) if (!again.includes(f)) this.held.delete(f.input.executionId);
          this.finishes.unshift(...again);
          await sleep(200 * 2 ** Math.min(batch[0]!.attempts, 4));
          continue;
        }
        for (const [at, outcome] of outcomes.entries()) {
          const { execution, input, attempts } = batch[at]!;
          this.held.delete(execution.id);
          if (outcome.finished || (attempts > 0 && outcome.code === 'CONFLICT')) {
            this.options.onFinish?.(execution, { ...outcome, status: input.status });
          } else {
            this.options.onError?.(
              new ExecStoreError(outcome.code ?? 'CONFLICT', `finishing ${execution.id}: ${outcome.code}`),
              execution,
            );
          }
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  /** Heartbeats everything held in one `extendClaims`; aborts the handlers whose claim is gone. */
  private async beat(): Promise<void> {
    const ids = [...this.held.keys()];
    if (ids.length === 0) return;
    let extensions;
    try {
      extensions = await this.client.extendClaims(this.options.workerId, ids, this.options.leaseMs);
    } catch (error) {
      this.options.onError?.(error);
      return;
    }
    for (const extension of extensions) {
      if (extension.extended) continue;
      const held = this.held.get(extension.executionId);
      if (!held || held.finishing) continue;
      this.held.delete(extension.executionId);
      const code = extension.code ?? 'CLAIM_LOST';
      const reason = new ExecStoreError(code, `${extension.executionId} is no longer held by ${this.options.workerId}`);
      held.controller.abort(reason);
      this.options.onError?.(reason, held.execution);
      this.freeSlot();
    }
  }

  private async releaseQuietly(execution: ExecutionRow): Promise<void> {
    try {
      await this.client.release(execution.id, this.options.workerId);
    } catch (error) {
      this.options.onError?.(error, execution);
    }
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + this.options.graceMs;
    this.freeSlot();
    const waitOrDeadline = async (work: Promise<unknown>) => {
      const left = deadline - Date.now();
      if (left > 0) await Promise.race([work, sleep(left)]);
    };
    // A pull waiting for work ends within waitMs; at the deadline it is
    // cut, and whatever it may have claimed is found below.
    const pullCut = this.loop ? waitOrDeadline(this.loop) : Promise.resolve();
    await waitOrDeadline(Promise.all([...this.held.values()].map((h) => h.done)));
    await pullCut;
    const wasCut = this.pull !== null;
    this.pull?.abort(new ExecStoreError('STOPPING', 'the worker is stopping'));
    // Handlers still running past the grace period: abort and release.
    const late = [...this.held.values()].filter((h) => !h.finishing);
    for (const held of late) {
      this.held.delete(held.execution.id);
      held.controller.abort(new ExecStoreError('STOPPING', 'the worker stopped before the handler returned'));
    }
    await Promise.all(late.map((h) => this.releaseQuietly(h.execution)));
    while (this.flushing) await this.flushing;
    if (wasCut) {
      const claims = await this.client.getActiveClaims().catch(() => []);
      await Promise.all(
        claims
          .filter((c) => c.workerId === this.options.workerId)
          .map((c) => this.client.release(c.executionId, this.options.workerId).catch(() => false)),
      );
    }
    if (this.heartbeat) clearInterval(this.heartbeat);
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
  }
}
