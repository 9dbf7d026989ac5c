'use strict';
// Shared by the test files: how to start the real sidecar, temp data dirs, polling.
// Not a test file itself (node --test runs *.test.js).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startSidecar, isProcessAlive } = require('../index.js');

const REPO = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');

/**
 * How to run the sidecar under test: the packaged binary when DOCSIDECAR_BINARY is set
 * (the packaging smoke test), else `python -m backend` with DOCSIDECAR_PYTHON
 * (default: the repository's .venv).
 * @returns {{command: string, args: string[], cwd?: string}}
 */
function sidecarCommand() {
  if (process.env.DOCSIDECAR_BINARY) return { command: process.env.DOCSIDECAR_BINARY, args: [] };
  const venvPython =
    process.platform === 'win32'
      ? path.join(REPO, '.venv', 'Scripts', 'python.exe')
      : path.join(REPO, '.venv', 'bin', 'python');
  return { command: process.env.DOCSIDECAR_PYTHON || venvPython, args: ['-m', 'backend'], cwd: REPO };
}

/** A fresh temp dir removed after the test. @param {import('node:test').TestContext} t */
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docsidecar-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Start the real sidecar in its own data dir; stopped after the test. Log records are
 * collected in `logs`.
 * @param {import('node:test').TestContext} t
 * @param {Partial<import('../lib/sidecar').StartOptions>} [extra]
 */
async function startReal(t, extra = {}) {
  /** @type {Array<Record<string, unknown>|string>} */
  const logs = [];
  const sidecar = await startSidecar({
    ...sidecarCommand(),
    dataDir: path.join(tempDir(t), 'data'),
    readyTimeoutMs: 60_000,
    onLog: (entry) => logs.push(entry),
    ...extra,
  });
  t.after(() => sidecar.stop({ graceMs: 5000 }));
  return { sidecar, logs };
}

/**
 * Poll until `predicate()` is truthy; returns the elapsed ms; throws after `timeoutMs`.
 * @param {() => unknown} predicate
 * @param {number} timeoutMs
 * @param {string} what
 */
async function waitUntil(predicate, timeoutMs, what) {
  const start = Date.now();
  for (;;) {
    if (await predicate()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The next `name` event of an emitter, or a timeout error.
 * @param {import('node:events').EventEmitter} emitter
 * @param {string} name
 * @param {number} timeoutMs
 * @returns {Promise<any>}
 */
function nextEvent(emitter, name, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref(); // a failed test must not keep the runner alive
    /** @param {any} value */
    function on(value) {
      clearTimeout(timer);
      resolve(value);
    }
    emitter.once(name, on);
  });
}

/**
 * Pids of all descendants of `pid` (Linux /proc; empty elsewhere).
 * @param {number} pid
 * @returns {number[]}
 */
function descendants(pid) {
  if (process.platform !== 'linux') return [];
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  /** @type {number[]} */
  const out = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(/** @type {number} */ (queue.shift())) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

module.exports = {
  REPO,
  FIXTURES,
  sidecarCommand,
  tempDir,
  startReal,
  waitUntil,
  nextEvent,
  descendants,
  isProcessAlive,
};
