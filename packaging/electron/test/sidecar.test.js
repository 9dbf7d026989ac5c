'use strict';
// The real sidecar driven through the module: token, typed helpers, log forwarding, clean
// stop, crash detection and restart.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { SidecarClient, SidecarError, SidecarStartError, isProcessAlive } = require('../index.js');
const { descendants, nextEvent, startReal, waitUntil } = require('../testing/helpers.js');

test('token: requests without it get 401, with a wrong one a SidecarError, with it 200', async (t) => {
  const { sidecar } = await startReal(t, { restart: false });
  const bare = await fetch(`${sidecar.baseUrl}/v1/status`);
  assert.equal(bare.status, 401);
  assert.equal((await bare.json()).error, 'unauthorized');
  assert.ok(bare.headers.get('x-request-id'));

  const wrong = new SidecarClient({ baseUrl: /** @type {string} */ (sidecar.baseUrl), token: 'not-the-token' });
  const err = await wrong.status({ requestId: 'wrong-token-probe' }).then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarError);
  assert.equal(err.status, 401);
  assert.equal(err.code, 'unauthorized');
  assert.equal(err.message, 'missing or invalid bearer token');
  assert.equal(err.requestId, 'wrong-token-probe');
  assert.equal((await wrong.health()).status, 'ok', '/v1/health needs no token');

  const status = await sidecar.status();
  assert.equal(status.pid, sidecar.pid);
  assert.equal(status.port, sidecar.port);
});

test('helpers: health, status, metrics, openapi; errors carry the sidecar’s error body', async (t) => {
  const { sidecar, logs } = await startReal(t, { restart: false });
  assert.deepEqual(await sidecar.health(), { status: 'ok' });
  const status = await sidecar.status({ requestId: 'status-from-node' });
  assert.equal(typeof status.version, 'string');
  assert.equal(typeof status.components, 'object');
  assert.equal(typeof status.schema_version, 'number');
  const metrics = await sidecar.metrics();
  assert.match(metrics, /# TYPE \w+ (counter|histogram|gauge)/);
  const schema = await sidecar.openapi();
  assert.ok(schema.paths['/v1/status'], 'the schema lists /v1/status');

  const missing = await sidecar.request('GET', '/v1/no-such-route').then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.ok(missing instanceof SidecarError);
  assert.equal(missing.status, 404);
  assert.equal(typeof missing.code, 'string');
  assert.ok(missing.requestId, 'the request id is kept for the logs');

  await assert.rejects(() => sidecar.request('GET', 'v1/status'), TypeError);
  await assert.rejects(() => sidecar.request('POST', '/v1/status', { json: {}, body: 'x' }), TypeError);

  // log forwarding: stderr JSON lines arrive parsed, with the request id of our call
  await waitUntil(
    () => logs.some((l) => typeof l === 'object' && l.request_id === 'status-from-node'),
    5000,
    'the access log line of our request',
  );
  const line = /** @type {Record<string, unknown>} */ (logs.find((l) => typeof l === 'object' && l.request_id === 'status-from-node'));
  for (const field of ['ts', 'level', 'logger', 'msg']) assert.ok(field in line, `log field ${field}`);
});

test('timeouts and aborts: a SidecarError(timeout) vs the caller’s own AbortError', async (t) => {
  const { sidecar } = await startReal(t, { restart: false });
  // the event stream never ends, so reading its body runs into the timeout
  const err = await sidecar.request('GET', '/v1/events', { timeoutMs: 300, responseType: 'text' }).then(
    () => assert.fail('expected a timeout'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarError);
  assert.equal(err.code, 'timeout');
  const controller = new AbortController();
  const pending = sidecar.request('GET', '/v1/events', { signal: controller.signal, responseType: 'text' });
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(pending, { name: 'AbortError' });
});

test('clean stop: SIGTERM, exit code 0, process and its children gone, later calls refused', async (t) => {
  const { sidecar } = await startReal(t, { restart: false });
  const pid = /** @type {number} */ (sidecar.pid);
  const family = [pid, ...descendants(pid)];
  /** @type {any[]} */
  const exits = [];
  sidecar.on('exit', (info) => exits.push(info));
  const info = await sidecar.stop({ graceMs: 10_000 });
  assert.deepEqual(info, { code: 0, signal: null });
  assert.deepEqual(exits, [{ pid, code: 0, signal: null, expected: true }]);
  assert.equal(sidecar.state, 'stopped');
  for (const p of family) assert.equal(isProcessAlive(p), false, `process ${p} is gone`);
  assert.deepEqual(await sidecar.stop(), info, 'stop() is idempotent');
  const err = await sidecar.status().then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.equal(err.code, 'not_running');
});

test('crash: kill -9 is detected, the sidecar restarts on a new port and serves again', async (t) => {
  const { sidecar } = await startReal(t, { restart: { backoffMs: 50 } });
  const oldPid = /** @type {number} */ (sidecar.pid);
  const oldPort = sidecar.port;
  const oldToken = sidecar.token;
  const exited = nextEvent(sidecar, 'exit', 10_000);
  const restarted = nextEvent(sidecar, 'restart', 60_000);
  process.kill(oldPid, 'SIGKILL');
  // a request made while it is down waits for the new process instead of failing
  const status = await sidecar.status({ timeoutMs: 60_000 });
  assert.deepEqual(await exited, { pid: oldPid, code: null, signal: 'SIGKILL', expected: false });
  const info = await restarted;
  assert.equal(info.previousPid, oldPid);
  assert.equal(info.attempt, 1);
  assert.equal(info.pid, sidecar.pid);
  assert.notEqual(sidecar.pid, oldPid);
  assert.notEqual(sidecar.port, oldPort, 'a new ephemeral port');
  assert.notEqual(sidecar.token, oldToken, 'a new token');
  assert.equal(status.pid, sidecar.pid);
  assert.equal(status.port, sidecar.port);
  assert.equal(sidecar.state, 'ready');
  assert.equal(isProcessAlive(oldPid), false);
});

test('crash: restarts are bounded; after the last one the sidecar is failed', async (t) => {
  const { sidecar } = await startReal(t, { restart: { maxRestarts: 1, backoffMs: 50 } });
  const firstPid = /** @type {number} */ (sidecar.pid);
  const restarted = nextEvent(sidecar, 'restart', 60_000);
  process.kill(firstPid, 'SIGKILL');
  await restarted;
  const failed = nextEvent(sidecar, 'failed', 10_000);
  process.kill(/** @type {number} */ (sidecar.pid), 'SIGKILL');
  const err = await failed;
  assert.ok(err instanceof SidecarStartError);
  assert.equal(err.code, 'crashed');
  assert.match(err.message, /giving up after 1 restart/);
  assert.equal(err.signal, 'SIGKILL');
  assert.equal(sidecar.state, 'failed');
  await assert.rejects(() => sidecar.status(), { code: 'crashed' });
});

test('crash with restart disabled: state failed at once', async (t) => {
  const { sidecar } = await startReal(t, { restart: false });
  const failed = nextEvent(sidecar, 'failed', 10_000);
  process.kill(/** @type {number} */ (sidecar.pid), 'SIGKILL');
  assert.equal((await failed).code, 'crashed');
  assert.equal(sidecar.state, 'failed');
  assert.deepEqual(await sidecar.stop(), { code: null, signal: 'SIGKILL' });
});
