// Every method of the seed's store through the client, each compared with
// the same call made as raw GraphQL against the same server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ExecStoreClient, ExecStoreError, type ExecutionRow } from '../src/index.js';
import { raw, Server, unique } from './server.js';

const ROW = `id flowId ownerId rootExecutionId parentExecutionId status executionDepth createdAt updatedAt
  startedAt completedAt errorMessage errorNodeId options integration externalEvents failureCount
  lastFailureReason lastFailureAt processingStartedAt processingWorkerId runAt priority paused concurrencyKey cursor`;
const CLAIM = 'executionId workerId claimedAt expiresAt heartbeatAt status';

/** The client's value is the raw answer's: dates as `Date`, enums in lower case. */
function same(client: unknown, wire: unknown, where = 'value'): void {
  if (client instanceof Date) {
    assert.equal(typeof wire, 'string', `${where}: a date`);
    assert.equal(client.getTime(), Date.parse(wire as string), where);
  } else if (typeof client === 'number' && typeof wire === 'string') {
    assert.equal(client, Number(wire), `${where}: a serial id as a number`);
  } else if (Array.isArray(wire)) {
    assert.ok(Array.isArray(client), `${where}: a list`);
    assert.equal(client.length, wire.length, `${where}: its length`);
    wire.forEach((item, at) => same(client[at], item, `${where}[${at}]`));
  } else if (wire !== null && typeof wire === 'object' && !(where.endsWith('options') || where.endsWith('integration') || where.endsWith('externalEvents'))) {
    for (const [key, value] of Object.entries(wire)) {
      same((client as Record<string, unknown>)[key], value, `${where}.${key}`);
    }
  } else if (typeof wire === 'string' && /^(CREATED|RUNNING|PAUSED|COMPLETED|FAILED|STOPPED|ACTIVE|RELEASED|EXPIRED)$/.test(wire)) {
    assert.equal(client, wire.toLowerCase(), where);
  } else {
    assert.deepEqual(client, wire, where);
  }
}

describe('the seed store through the client', () => {
  let server: Server;
  let client: ExecStoreClient;
  const flow = unique('seed-flow');
  const root = unique('root');
  const child = (n: number) => `${root}-c${n}`;

  before(async () => {
    server = await Server.start();
    client = new ExecStoreClient({ url: server.url });
  });
  after(async () => server.stop());

  test('create, get, getChildExecutions, batchGetDirectChildren, feeds, trees, stats', async () => {
    await client.create({
      id: root,
      flowId: flow,
      ownerId: 'owner-1',
      status: 'running',
      options: { execution: { maxConcurrency: 4 }, debug: true },
      integration: { kind: 'test' },
      externalEvents: [{ at: 1 }],
    });
    for (let n = 0; n < 5; n++) {
      await client.create({ id: child(n), flowId: flow, ownerId: 'owner-1', parentExecutionId: root });
    }
    await client.create({ id: `${child(0)}-g`, flowId: flow, ownerId: 'owner-1', parentExecutionId: child(0) });
    // A seed row with fields a create does not take: written right after.
    const startedAt = new Date('2026-01-02T03:04:05.678Z');
    await client.create({
      id: `${root}-late`,
      flowId: flow,
      ownerId: 'owner-1',
      parentExecutionId: root,
      status: 'running',
      startedAt,
      processingWorkerId: 'w-late',
      createdAt: new Date(0),
      updatedAt: new Date(0),
      rootExecutionId: 'ignored',
      executionDepth: 99,
      failureCount: 0,
    });

    const got = await client.get(root);
    const wire = (await raw(server.url, `query($id: ID!) { execution(id: $id) { ${ROW} } }`, { id: root })).execution;
    same(got, wire, 'get');
    assert.deepEqual(got!.options, { execution: { maxConcurrency: 4 }, debug: true });
    assert.equal(got!.status, 'running');
    assert.equal(await client.get(unique('absent')), null);

    const late = (await client.get(`${root}-late`))!;
    assert.equal(late.startedAt!.getTime(), startedAt.getTime());
    assert.equal(late.processingWorkerId, 'w-late');
    assert.equal(late.rootExecutionId, root);
    assert.equal(late.executionDepth, 1);

    const children = await client.getChildExecutions(root);
    const wireChildren = (await raw(server.url, `query($id: ID!) { execution(id: $id) { children(first: 1000) { ${ROW} } } }`, { id: root }))
      .execution.children;
    same(children, wireChildren, 'getChildExecutions');
    assert.equal(children.length, 6);

    const batch = await client.batchGetDirectChildren([root, child(0), child(1)]);
    const grand = (await raw(server.url, `query($id: ID!) { execution(id: $id) { children(first: 1000) { ${ROW} } } }`, { id: child(0) }))
      .execution.children;
    same(batch, [...wireChildren, ...grand], 'batchGetDirectChildren');

    // Feeds: pages of 2 visit every descendant once, newest first.
    const seen: ExecutionRow[] = [];
    let cursor: string | null = null;
    do {
      const page = await client.getChildFeed(root, 2, cursor);
      const wirePage: any = (
        await raw(
          server.url,
          `query($r: ID!, $a: String) { childFeed(rootExecutionId: $r, first: 2, after: $a) { nodes { ${ROW} } pageInfo { hasNextPage endCursor } } }`,
          { r: root, a: cursor },
        )
      ).childFeed;
      same(page.items, wirePage.nodes, 'getChildFeed');
      assert.equal(page.nextCursor, wirePage.pageInfo.hasNextPage ? wirePage.pageInfo.endCursor : null);
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    assert.equal(new Set(seen.map((r) => r.id)).size, 7);

    const direct = await client.getDirectChildFeed(root, 50);
    const wireDirect = (
      await raw(server.url, `query($p: ID!) { directChildFeed(parentExecutionId: $p, first: 50) { nodes { ${ROW} } } }`, { p: root })
    ).directChildFeed;
    same(direct.items, wireDirect.nodes, 'getDirectChildFeed');
    assert.equal(direct.nextCursor, null);

    const roots = await client.getRootExecutions(flow);
    const wireRoots = (
      await raw(server.url, `query($f: ID!) { rootExecutions(flowId: $f, first: 50) { edges { cursor node { levels totalNested execution { ${ROW} } } } } }`, {
        f: flow,
      })
    ).rootExecutions.edges;
    same(
      roots,
      wireRoots.map((e: any) => ({ ...e.node, cursor: e.cursor })),
      'getRootExecutions',
    );
    assert.equal(roots[0]!.totalNested, 7);
    assert.equal(roots[0]!.levels, 2);
    assert.deepEqual(await client.getRootExecutions(flow, 50, roots[0]!.cursor), []);

    const tree = await client.getExecutionTree(root);
    const wireTree = (await raw(server.url, `query($id: ID!) { executionTree(executionId: $id) { id parentId level execution { ${ROW} } } }`, { id: root }))
      .executionTree;
    same(tree, wireTree, 'getExecutionTree');
    assert.equal(tree.length, 8);

    const stats = await client.getExecutionStats(root);
    const wireStats = (
      await raw(
        server.url,
        `query($r: ID!) { executionStats(rootExecutionId: $r) { total created running paused completed failed stopped maxDepth firstCreatedAt lastCompletedAt completedPerMinute } }`,
        { r: root },
      )
    ).executionStats;
    same(stats, wireStats, 'getExecutionStats');
    assert.equal(stats.total, 7);
  });

  test('updateExecutionStatus, updateFailureInfo, delete', async () => {
    const id = unique('upd');
    await client.create({ id, flowId: flow, ownerId: 'owner-1' });
    assert.equal(await client.updateExecutionStatus({ executionId: id, status: 'running' }), true);
    const failedAt = new Date('2026-02-03T04:05:06.789Z');
    assert.equal(
      await client.updateExecutionStatus({
        executionId: id,
        status: 'failed',
        errorMessage: 'boom',
        errorNodeId: 'node-7',
        lastFailureAt: failedAt,
        failureCount: 2,
      }),
      true,
    );
    const row = (await client.get(id))!;
    same(row, (await raw(server.url, `query($id: ID!) { execution(id: $id) { ${ROW} } }`, { id })).execution, 'updated');
    assert.equal(row.status, 'failed');
    assert.equal(row.errorMessage, 'boom');
    assert.ok(row.startedAt && row.completedAt, 'RUNNING stamped startedAt, FAILED completedAt');
    assert.equal(row.lastFailureAt!.getTime(), failedAt.getTime());
    assert.equal(await client.updateExecutionStatus({ executionId: unique('absent'), status: 'running' }), false);

    assert.equal(await client.updateFailureInfo(id, 3, 'again'), true);
    const failed = (await client.get(id))!;
    assert.equal(failed.failureCount, 3);
    assert.equal(failed.lastFailureReason, 'again');
    assert.equal(await client.updateFailureInfo(unique('absent'), 1, 'x'), false);

    assert.equal(await client.delete(id), true);
    assert.equal(await client.delete(id), false);
    assert.equal(await client.get(id), null);
  });

  test('claims: claim, extend, release, active claims, expiry', async () => {
    const id = unique('claim');
    await client.create({ id, flowId: flow, ownerId: 'owner-1' });
    assert.equal(await client.claimExecution(id, 'w1', 60_000), true);
    assert.equal(await client.claimExecution(id, 'w2', 60_000), false, 'held by another');
    assert.equal(await client.extendClaim(id, 'w1', 120_000), true);
    assert.equal(await client.extendClaim(id, 'w2', 120_000), false);

    const claim = await client.getClaimForExecution(id);
    same(claim, (await raw(server.url, `query($id: ID!) { claim(executionId: $id) { ${CLAIM} } }`, { id })).claim, 'getClaimForExecution');
    assert.equal(claim!.status, 'active');
    assert.equal(claim!.workerId, 'w1');
    assert.ok(claim!.expiresAt.getTime() > Date.now() + 60_000);

    const active = await client.getActiveClaims();
    same(active, (await raw(server.url, `{ activeClaims { ${CLAIM} } }`)).activeClaims, 'getActiveClaims');
    assert.ok(active.some((c) => c.executionId === id));

    await client.releaseExecution(id, 'w2'); // not the holder: nothing changes
    assert.equal((await client.getClaimForExecution(id))!.status, 'active');
    await client.releaseExecution(id, 'w1');
    assert.equal((await client.getClaimForExecution(id))!.status, 'released');
    assert.equal((await client.get(id))!.processingWorkerId, null);
    assert.equal(await client.getClaimForExecution(unique('absent')), null);

    // A claim of 1 ms lapses; expireOldClaims marks it.
    const short = unique('short');
    await client.create({ id: short, flowId: flow, ownerId: 'owner-1' });
    assert.equal(await client.claimExecution(short, 'w3', 1), true);
    let expired = 0;
    for (let tries = 0; tries < 100 && expired === 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      expired = await client.expireOldClaims();
    }
    assert.ok(expired >= 1);
    assert.equal((await client.getClaimForExecution(short))!.status, 'expired');
  });

  test('recovery: needing recovery, recordRecovery, history, the recovery lock', async () => {
    const id = unique('rec');
    await client.create({ id, flowId: flow, ownerId: 'owner-1' });
    const needing = await client.getExecutionsNeedingRecovery(1000);
    const wireNeeding = (await raw(server.url, `query($l: Int!) { executionsNeedingRecovery(limit: $l) { ${ROW} } }`, { l: 1000 }))
      .executionsNeedingRecovery;
    same(needing, wireNeeding, 'getExecutionsNeedingRecovery');
    assert.ok(needing.some((r) => r.id === id));

    await client.recordRecovery(id, 'recoverer', 'worker died', 'running', 'w-dead');
    await client.recordRecovery(id, 'recoverer', 'again');
    const history = await client.getRecoveryHistory(id);
    same(
      history,
      (await raw(server.url, `query($id: ID!) { recoveryHistory(executionId: $id) { id executionId recoveredAt recoveredByWorker recoveryReason previousStatus previousWorkerId } }`, { id }))
        .recoveryHistory,
      'getRecoveryHistory',
    );
    assert.equal(history.length, 2);
    assert.equal(history[0]!.recoveryReason, 'again', 'newest first');
    assert.equal(history[1]!.previousWorkerId, 'w-dead');
    assert.equal(typeof history[0]!.id, 'number');

    const lock = 700_000 + Math.floor(Math.random() * 100_000);
    const other = new ExecStoreClient({ url: server.url });
    assert.equal(await client.tryAcquireRecoveryLock(lock), true);
    assert.equal(await client.tryAcquireRecoveryLock(lock), true, 'its holder renews it');
    assert.equal(await other.tryAcquireRecoveryLock(lock), false, 'held by another client');
    await other.releaseRecoveryLock(lock); // not the holder: still held
    assert.equal(await other.tryAcquireRecoveryLock(lock), false);
    await client.releaseRecoveryLock(lock);
    assert.equal(await other.tryAcquireRecoveryLock(lock), true);
    await other.releaseRecoveryLock(lock);
  });

  test('errors are typed with the server code', async () => {
    await assert.rejects(
      client.create({ id: unique('orphan'), flowId: flow, ownerId: 'o', parentExecutionId: unique('absent') }),
      (error: unknown) => error instanceof ExecStoreError && error.code === 'BAD_USER_INPUT',
    );
    await assert.rejects(client.getChildFeed(root, 10, 'not-a-cursor'), (error: unknown) => {
      return error instanceof ExecStoreError && error.code === 'BAD_USER_INPUT';
    });
    const offline = new ExecStoreClient({ url: 'http://127.0.0.1:9/graphql', retries: 1, timeoutMs: 2_000 });
    await assert.rejects(offline.get('x'), (error: unknown) => error instanceof ExecStoreError && error.code === 'NETWORK');
  });
});
