'use strict';
// The sidecar's lifetime is bound to its parent: when the Electron main process (here a Node
// stand-in using this module, with the sidecar up and its model loaded) dies — even by
// SIGKILL, with no chance to call stop() — the sidecar notices (stdin EOF, --parent-pid) and
// exits within 2 s, its children with it. (A parent dying right after the ready line, while
// the model still loads, is tests/e2e/test_lifecycle.py::test_parent_death_exits_within_2s.)
// Also: a real sidecar that is too slow for the ready timeout is killed and leaves nothing behind.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { test } = require('node:test');

const { startSidecar, SidecarStartError } = require('../index.js');
const { FIXTURES, descendants, isProcessAlive, sidecarCommand, startReal, tempDir, waitUntil } = require('../testing/helpers.js');

const STANDIN = path.join(FIXTURES, 'parent-standin.js');
const EXIT_WITHIN_MS = 2000;

/**
 * Start the stand-in parent; resolves with its child process and the sidecar it started.
 * @param {import('node:test').TestContext} t
 * @param {Record<string, string>} [env]
 */
async function startStandin(t, env = {}) {
  const spec = { ...sidecarCommand(), dataDir: path.join(tempDir(t), 'data'), readyTimeoutMs: 60_000, restart: false };
  const parent = spawn(process.execPath, [STANDIN], {
    env: { ...process.env, ...env, STANDIN_SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
  });
  const line = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: /** @type {import('node:stream').Readable} */ (parent.stdout) });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    parent.once('exit', (code) => reject(new Error(`the stand-in exited (${code}) before reporting`)));
  });
  const report = JSON.parse(/** @type {string} */ (line));
  if (report.error) throw new Error(`the stand-in could not start the sidecar: ${report.error}`);
  return { parent, sidecarPid: /** @type {number} */ (report.sidecarPid) };
}

test('SIGKILL of the Node parent (the Electron stand-in) makes the sidecar exit within 2 s', async (t) => {
  const { parent, sidecarPid } = await startStandin(t);
  const family = [sidecarPid, ...descendants(sidecarPid)];
  assert.ok(family.every(isProcessAlive), 'the sidecar (and its worker children) run');
  const killed = Date.now();
  parent.kill('SIGKILL');
  const waited = await waitUntil(() => family.every((p) => !isProcessAlive(p)), 10_000, 'the orphaned sidecar to exit');
  t.diagnostic(`sidecar family gone ${waited} ms after the parent was killed`);
  assert.ok(
    waited < EXIT_WITHIN_MS,
    `the sidecar took ${waited} ms to exit after its parent was killed (${Date.now() - killed} ms incl. polling)`,
  );
});

test('a parent that exits without calling stop() takes the sidecar with it', async (t) => {
  const { parent, sidecarPid } = await startStandin(t, { STANDIN_EXIT_AFTER_READY: '1' });
  await new Promise((resolve) => (parent.exitCode !== null ? resolve(undefined) : parent.once('exit', resolve)));
  const waited = await waitUntil(() => !isProcessAlive(sidecarPid), 10_000, 'the sidecar to exit');
  assert.ok(waited < EXIT_WITHIN_MS, `the sidecar took ${waited} ms to exit after its parent left`);
});

test('real sidecar slower than the ready timeout: killed, lock released, a normal start then works', async (t) => {
  const dataDir = path.join(tempDir(t), 'data');
  const err = await startSidecar({ ...sidecarCommand(), dataDir, readyTimeoutMs: 20, restart: false }).then(
    () => assert.fail('a 20 ms ready timeout cannot be met'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarStartError);
  assert.equal(err.code, 'ready_timeout');
  assert.match(err.message, /no ready line within 20 ms/);
  await waitUntil(() => !isProcessAlive(err.pid), 5000, 'the timed-out sidecar to be gone');
  const { sidecar } = await startReal(t, { dataDir, restart: false });
  assert.equal((await sidecar.status()).data_dir, dataDir, 'the same data dir is usable again');
});
