'use strict';
// The start-up contract, with a scripted stand-in for the sidecar (fast, exact) and the real
// sidecar where the real behaviour matters (second instance on a data dir).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { startSidecar, SidecarStartError, isProcessAlive } = require('../index.js');
const { FIXTURES, sidecarCommand, startReal, tempDir, waitUntil } = require('../testing/helpers.js');

const FAKE = path.join(FIXTURES, 'fake-sidecar.js');

/**
 * @param {import('node:test').TestContext} t
 * @param {string} mode
 * @param {object} [extra]
 */
function startFake(t, mode, extra = {}) {
  const dir = tempDir(t);
  return startSidecar({
    command: process.execPath,
    args: [FAKE],
    dataDir: path.join(dir, 'data'),
    env: { ...process.env, FAKE_MODE: mode, FAKE_RECORD: path.join(dir, 'record.json') },
    readyTimeoutMs: 10_000,
    restart: false,
    ...extra,
  });
}

test('ready timeout: the child is killed and the error carries the last stderr lines', async (t) => {
  /** @type {Array<unknown>} */
  const logs = [];
  const err = await startFake(t, 'never-ready', { readyTimeoutMs: 500, onLog: (/** @type {unknown} */ e) => logs.push(e) }).then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarStartError);
  assert.equal(err.code, 'ready_timeout');
  assert.match(err.message, /no ready line within 500 ms/);
  assert.match(err.message, /fake sidecar in mode never-ready/);
  assert.match(err.message, /a raw, non-JSON stderr line/);
  assert.deepEqual(err.stderrTail, [
    { level: 'INFO', logger: 'fake', msg: 'fake sidecar in mode never-ready' },
    'a raw, non-JSON stderr line',
  ]);
  assert.deepEqual(logs, err.stderrTail, 'log lines were forwarded as they came');
  assert.ok(typeof err.pid === 'number');
  await waitUntil(() => !isProcessAlive(/** @type {number} */ (err.pid)), 5000, 'the timed-out child to be gone');
});

test('spawn contract: serve flags, parent pid, stdin pipe, a fresh base64url token per start', async (t) => {
  const dir = tempDir(t);
  const record = path.join(dir, 'record.json');
  const opts = {
    command: process.execPath,
    args: [FAKE],
    dataDir: path.join(dir, 'data'),
    extraArgs: ['--log-level', 'DEBUG'],
    env: { ...process.env, FAKE_MODE: 'ready', FAKE_RECORD: record, DOCSIDECAR_TOKEN: 'inherited-must-not-win' },
    restart: /** @type {false} */ (false),
  };
  const first = await startSidecar(opts);
  const seen = JSON.parse(fs.readFileSync(record, 'utf8'));
  await first.stop({ graceMs: 2000 });
  assert.deepEqual(seen.argv, [
    'serve',
    '--data-dir',
    opts.dataDir,
    '--port',
    '0',
    '--parent-pid',
    String(process.pid),
    '--stdin-watch',
    '--log-level',
    'DEBUG',
  ]);
  assert.equal(seen.stdinIsPipe, true);
  assert.equal(seen.token, first.token);
  assert.match(seen.token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  const second = await startSidecar(opts);
  await second.stop({ graceMs: 2000 });
  assert.notEqual(JSON.parse(fs.readFileSync(record, 'utf8')).token, seen.token, 'a new token every start');
});

test('a non-JSON stdout line before the handshake is logged, not fatal', async (t) => {
  /** @type {Array<{entry: unknown, stream: string}>} */
  const logs = [];
  const sidecar = await startFake(t, 'noisy-ready', { onLog: (/** @type {unknown} */ entry, /** @type {{stream: string}} */ meta) => logs.push({ entry, stream: meta.stream }) });
  await sidecar.stop({ graceMs: 2000 });
  assert.ok(logs.some((l) => l.stream === 'stdout' && l.entry === 'this is not the handshake'));
});

test('an {"event":"error"} line rejects with the sidecar’s code, message, detail and exit code', async (t) => {
  const err = await startFake(t, 'error').then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarStartError);
  assert.equal(err.code, 'already_running');
  assert.equal(err.message, 'another one runs (pid 1, port 2)');
  assert.deepEqual(err.detail, { pid: 1, port: 2 });
  assert.equal(err.exitCode, 3);
});

test('an error line from a process that does not exit still rejects with that error', async (t) => {
  const err = await startFake(t, 'error-hang', { readyTimeoutMs: 500 }).then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.equal(err.code, 'already_running');
  await waitUntil(() => !isProcessAlive(err.pid), 5000, 'the hanging child to be killed');
});

test('exit before the handshake rejects with the exit code and the stderr tail', async (t) => {
  const err = await startFake(t, 'crash').then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.equal(err.code, 'exited_before_ready');
  assert.equal(err.exitCode, 1);
  assert.match(err.message, /ImportError: boom/);
});

test('a missing executable rejects with spawn_failed', async (t) => {
  const err = await startSidecar({
    command: path.join(tempDir(t), 'no-such-binary'),
    dataDir: path.join(tempDir(t), 'data'),
    readyTimeoutMs: 5000,
  }).then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarStartError);
  assert.equal(err.code, 'spawn_failed');
  assert.match(err.message, /ENOENT/);
});

test('bad options are refused before anything is spawned', async () => {
  await assert.rejects(() => startSidecar(/** @type {any} */ ({ dataDir: '/tmp/x' })), TypeError);
  await assert.rejects(() => startSidecar(/** @type {any} */ ({ command: 'x' })), TypeError);
  await assert.rejects(() => startSidecar({ command: 'x', dataDir: '/tmp/x', restart: { backoffMs: -5 } }), TypeError);
});

test('real sidecar: a second instance on the same data dir is refused (already_running, exit 3)', async (t) => {
  const { sidecar } = await startReal(t);
  const status = await sidecar.status();
  const err = await startSidecar({ ...sidecarCommand(), dataDir: status.data_dir, readyTimeoutMs: 60_000 }).then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarStartError);
  assert.equal(err.code, 'already_running');
  assert.equal(err.exitCode, 3);
  assert.deepEqual(err.detail, { pid: sidecar.pid, port: sidecar.port });
  assert.equal((await sidecar.health()).status, 'ok', 'the first one is unharmed');
});

test('one-file bootloader: stop() after an ignored SIGTERM kills the inner sidecar too', async (t) => {
  const dir = tempDir(t);
  const record = path.join(dir, 'record.json');
  const sidecar = await startFake(t, 'bootloader', {
    env: { ...process.env, FAKE_MODE: 'bootloader', FAKE_RECORD: record, FAKE_STUBBORN: '1' },
  });
  const { bootloaderPid } = JSON.parse(fs.readFileSync(record, 'utf8'));
  const inner = /** @type {number} */ (sidecar.pid);
  t.after(() => isProcessAlive(inner) && process.kill(inner, 'SIGKILL')); // not left behind if this fails
  assert.notEqual(inner, bootloaderPid, 'the ready line names the inner process');
  const info = await sidecar.stop({ graceMs: 300 });
  assert.equal(info?.signal, 'SIGKILL', 'the bootloader was killed after the grace period');
  await waitUntil(() => !isProcessAlive(inner), 5000, 'the inner sidecar to be killed as well');
});

test('one-file bootloader killed from outside: the inner sidecar does not outlive it', async (t) => {
  const dir = tempDir(t);
  const record = path.join(dir, 'record.json');
  const sidecar = await startFake(t, 'bootloader', { env: { ...process.env, FAKE_MODE: 'bootloader', FAKE_RECORD: record } });
  const { bootloaderPid } = JSON.parse(fs.readFileSync(record, 'utf8'));
  const inner = /** @type {number} */ (sidecar.pid);
  t.after(() => isProcessAlive(inner) && process.kill(inner, 'SIGKILL'));
  process.kill(bootloaderPid, 'SIGKILL');
  await waitUntil(() => sidecar.state === 'failed', 5000, 'the crash to be noticed');
  await waitUntil(() => !isProcessAlive(inner), 5000, 'the orphaned inner sidecar to be killed');
});
