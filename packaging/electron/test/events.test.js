'use strict';
// The event stream against the real sidecar: live delivery, a dropped connection resumed with
// Last-Event-ID (missed events replayed once, in order), and a sidecar crash (resync, new hello).
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { Subscription } = require('../index.js');
const { nextEvent, startReal, waitUntil } = require('../testing/helpers.js');
const { startRelay } = require('../testing/relay.js');

/** Collect events; `types()` lists `type` of those the sidecar published (not hello/resync). */
function collector() {
  /** @type {import('../lib/subscription').SidecarEvent[]} */
  const events = [];
  return {
    events,
    onEvent: (/** @type {import('../lib/subscription').SidecarEvent} */ e) => events.push(e),
    published: () => events.filter((e) => e.type !== 'hello' && e.type !== 'resync'),
    count: (/** @type {string} */ type) => events.filter((e) => e.type === type).length,
  };
}

test('SSE reconnect: a dropped stream resumes with Last-Event-ID; missed events arrive once, in order', async (t) => {
  const { sidecar } = await startReal(t, { restart: false });
  const relay = await startRelay(/** @type {number} */ (sidecar.port));
  t.after(() => relay.close());
  const seen = collector();
  /** @type {Error[]} */
  const errors = [];
  const sub = new Subscription(
    {
      connection: async () => ({
        baseUrl: `http://127.0.0.1:${relay.port}`,
        token: /** @type {string} */ (sidecar.token),
        pid: /** @type {number} */ (sidecar.pid),
      }),
    },
    seen.onEvent,
    { reconnectDelayMs: 100, maxReconnectDelayMs: 200, onError: (err) => errors.push(err) },
  );
  t.after(() => sub.close());

  await waitUntil(() => seen.count('hello') === 1, 10_000, 'the first hello');
  await sidecar.pauseIngest();
  await waitUntil(() => seen.count('ingest.paused') === 1, 10_000, 'the live ingest.paused event');
  const lastBeforeDrop = sub.lastEventId;
  assert.ok(lastBeforeDrop, 'live events carry ids');

  relay.refuse(true); // the network goes away: the stream drops and reconnects fail
  relay.cut();
  await waitUntil(() => errors.length >= 2, 10_000, 'the drop and a failed reconnect to be reported');
  assert.equal(sub.connected, false);
  await sidecar.resumeIngest(); // published while nobody listens
  await sidecar.pauseIngest();
  relay.refuse(false);

  await waitUntil(() => seen.published().length === 3, 10_000, 'the two missed events after reconnecting');
  assert.deepEqual(
    seen.published().map((e) => e.type),
    ['ingest.paused', 'ingest.resumed', 'ingest.paused'],
    'each event exactly once, in publication order',
  );
  const ids = seen.published().map((e) => Number(e.id));
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  assert.equal(new Set(ids).size, ids.length);
  const resumedHead = relay.heads[relay.heads.length - 1];
  assert.match(resumedHead, new RegExp(`^last-event-id: ${lastBeforeDrop}$`, 'im'), 'the reconnect sent Last-Event-ID');
  assert.ok(relay.heads.every((h) => /^authorization: bearer /im.test(h)), 'every connection sent the token');
  assert.ok(errors.every((e) => e.name === 'SidecarError'), 'drops are reported as SidecarErrors');
  assert.equal(seen.count('hello'), 2, 'one hello per connection that opened');
  assert.equal(seen.count('resync'), 0, 'same process, nothing lost: no resync needed');
  await sub.close();
  assert.equal(sub.closed, true);
});

test('SSE across a crash: the subscription follows the restarted sidecar and signals resync', async (t) => {
  const { sidecar } = await startReal(t, { restart: { backoffMs: 50 } });
  const seen = collector();
  const sub = sidecar.subscribe(seen.onEvent, { reconnectDelayMs: 100 });
  await waitUntil(() => seen.count('hello') === 1, 10_000, 'the first hello');
  const oldPid = /** @type {number} */ (sidecar.pid);
  const restarted = nextEvent(sidecar, 'restart', 60_000);
  process.kill(oldPid, 'SIGKILL');
  const info = await restarted;
  await waitUntil(() => seen.count('resync') === 1, 20_000, 'the resync after the restart');
  const resync = /** @type {any} */ (seen.events.find((e) => e.type === 'resync'));
  assert.deepEqual(resync.data, { reason: 'restarted', previous_pid: oldPid, pid: info.pid });
  const hellos = seen.events.filter((e) => e.type === 'hello');
  assert.deepEqual(
    hellos.map((e) => e.pid),
    [oldPid, info.pid],
  );
  await sidecar.pauseIngest();
  await waitUntil(() => seen.count('ingest.paused') === 1, 10_000, 'an event from the new process');
  assert.equal(/** @type {any} */ (seen.events.find((e) => e.type === 'ingest.paused')).pid, info.pid);
  await sidecar.stop();
  await sub.done;
  assert.equal(sub.closed, true, 'stop() ends subscriptions');
});
