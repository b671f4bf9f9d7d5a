// The worker against a real server: a drain completes every execution
// exactly once, a handler whose claim is lost or cancelled is aborted, and
// stop() under load leaves nothing held.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ExecStoreClient, Worker, type ExecutionOptions, type ExecutionRow } from '../src/index.js';
import { Server, unique } from './server.js';

async function queue(client: ExecStoreClient, flow: string, count: number, options: ExecutionOptions | null = null): Promise<string[]> {
  const ids: string[] = [];
  for (let at = 0; at < count; at += 500) {
    const rows = Array.from({ length: Math.min(500, count - at) }, (_, n) => ({
      id: `${flow}-${at + n}`,
      flowId: flow,
      ownerId: 'owner-1',
      options,
    }));
    ids.push(...(await client.createMany(rows)).map((r) => r.id));
  }
  return ids;
}

/** Claims still held by `workerId`, read from the server. */
async function heldBy(client: ExecStoreClient, workerId: string): Promise<string[]> {
  const claims = await client.getActiveClaims();
  return claims.filter((c) => c.workerId === workerId && c.expiresAt.getTime() > Date.now()).map((c) => c.executionId);
}

describe('the worker', () => {
  let server: Server;
  let client: ExecStoreClient;

  before(async () => {
    server = await Server.start();
    client = new ExecStoreClient({ url: server.url });
  });
  after(async () => server.stop());

  test('drains a flow, each execution completed exactly once, failures retried', async () => {
    const flow = unique('drain');
    // Retries without the default backoff (a minute): the execution's own policy.
    const ids = await queue(client, flow, 600, { retry: { backoffMs: 0 } });
    const failsFirst = (id: string) => Number(id.split('-').pop()) % 50 === 0;
    const workerId = unique('w');
    const finished: string[] = [];
    const attempts = new Map<string, number>();
    let stopWhenDone: () => void = () => {};
    const allDone = new Promise<void>((resolve) => (stopWhenDone = resolve));
    const worker = new Worker(client, {
      workerId,
      flowId: flow,
      concurrency: 8,
      waitMs: 200,
      handleSignals: false,
      handler: async (execution, context) => {
        attempts.set(execution.id, context.attempt);
        if (failsFirst(execution.id) && context.attempt === 1) throw new Error('first attempt fails');
      },
      onFinish: (execution, outcome) => {
        if (outcome.status === 'completed') finished.push(execution.id);
        if (finished.length === ids.length) stopWhenDone();
      },
    });
    const running = worker.start();
    await allDone;
    await worker.stop();
    await running;
    assert.equal(finished.length, ids.length);
    assert.equal(new Set(finished).size, ids.length, 'each completed once');
    for (const id of ids.filter(failsFirst)) {
      assert.equal(attempts.get(id), 2, `${id} failed once, then completed`);
    }
    for (let at = 0; at < ids.length; at += 50) {
      const rows = await Promise.all(ids.slice(at, at + 50).map((id) => client.get(id)));
      for (const row of rows) {
        assert.equal(row!.status, 'completed', `${row!.id} on the server`);
        assert.equal(row!.failureCount, failsFirst(row!.id) ? 1 : 0);
      }
    }
    assert.deepEqual(await heldBy(client, workerId), []);
  });

  test('a handler whose claim is released behind its back, or cancelled, is aborted', async () => {
    const flow = unique('lost');
    const [lost, cancelled] = await queue(client, flow, 2);
    const workerId = unique('w');
    const aborted = new Map<string, string>();
    const started = new Set<string>();
    let bothAborted: () => void = () => {};
    const done = new Promise<void>((resolve) => (bothAborted = resolve));
    let onStart: () => void = () => {};
    const bothStarted = new Promise<void>((resolve) => (onStart = resolve));
    const worker = new Worker(client, {
      workerId,
      flowId: flow,
      concurrency: 2,
      leaseMs: 3_000,
      heartbeatMs: 100,
      waitMs: 100,
      handleSignals: false,
      handler: (execution: ExecutionRow, { signal }) =>
        new Promise<void>((_, reject) => {
          started.add(execution.id);
          if (started.size === 2) onStart();
          signal.addEventListener('abort', () => {
            aborted.set(execution.id, (signal.reason as { code?: string }).code ?? '?');
            if (aborted.size === 2) bothAborted();
            reject(signal.reason);
          });
        }),
    });
    const running = worker.start();
    await bothStarted;
    // Someone else releases the claim (a recovery that thought the worker dead).
    assert.equal(await client.release(lost!, workerId), true);
    assert.ok((await client.cancelExecution(cancelled!, 'not wanted')) >= 1);
    await done;
    assert.equal(aborted.get(lost!), 'CLAIM_LOST');
    assert.equal(aborted.get(cancelled!), 'CANCELLED');
    assert.equal(worker.holding, 0, 'an aborted handler frees its slot');
    await worker.stop();
    await running;
    assert.equal((await client.get(cancelled!))!.status, 'stopped');
  });

  test('stop() under load: every execution finished or released within the grace period', async () => {
    const flow = unique('stop');
    const ids = await queue(client, flow, 400);
    const workerId = unique('w');
    let finished = 0;
    let someDone: () => void = () => {};
    const halfway = new Promise<void>((resolve) => (someDone = resolve));
    const worker = new Worker(client, {
      workerId,
      flowId: flow,
      concurrency: 8,
      waitMs: 1_000,
      graceMs: 2_000,
      handleSignals: false,
      handler: async (execution, { signal }) => {
        // Most take 5 ms; some would take a minute unless aborted.
        const ms = Number(execution.id.split('-').pop()) % 37 === 0 ? 60_000 : 5;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, ms);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
        });
      },
      onFinish: () => {
        if (++finished === 50) someDone();
      },
    });
    const running = worker.start();
    await halfway;
    const stopAt = Date.now();
    await worker.stop();
    const took = Date.now() - stopAt;
    await running;
    assert.ok(took < 2_000 + 1_500, `stop() took ${took} ms`);
    assert.deepEqual(await heldBy(client, workerId), [], 'nothing left held');
    const rows = await Promise.all(ids.map((id) => client.get(id)));
    for (const row of rows) {
      assert.ok(row!.status === 'completed' || row!.status === 'created', `${row!.id} is ${row!.status}`);
      if (row!.status === 'created') assert.equal(row!.processingWorkerId, null, `${row!.id} was released`);
    }
    const completed = rows.filter((r) => r!.status === 'completed').length;
    assert.equal(completed, finished, 'what the worker reported finished is what the server has');
    assert.ok(completed < ids.length, 'stopped mid-drain');
  });
});
