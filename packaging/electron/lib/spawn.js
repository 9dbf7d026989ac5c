'use strict';
/**
 * Start one sidecar process and wait for its handshake line.
 *
 * One call = one process ("generation"). Supervision (restarts) lives in `sidecar.js`.
 */

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const readline = require('node:readline');

const { SidecarStartError, formatTail } = require('./errors');
const { parseHandshakeLine, parseLogLine, serveArgs } = require('./handshake');
const platform = require('./platform');

const STDERR_TAIL_LINES = 30;

/**
 * @typedef {Record<string, unknown>|string} LogEntry
 *   a parsed JSON log record of the sidecar (fields ts, level, logger, msg, request_id, …)
 *   or a raw line when it was not JSON
 */

/**
 * @callback LogHandler
 * @param {LogEntry} entry
 * @param {{pid: number|undefined, stream: 'stderr'|'stdout'}} meta
 * @returns {void}
 */

/**
 * @typedef {object} SpawnOptions
 * @property {string} command        executable: the packaged `docsidecar` binary or a Python
 * @property {string[]} [args]       arguments before `serve` (`['-m', 'backend']` for Python)
 * @property {string[]} [extraArgs]  arguments after the lifecycle flags (e.g. `--log-level DEBUG`)
 * @property {string} dataDir
 * @property {string} [cwd]
 * @property {NodeJS.ProcessEnv} [env]  environment; defaults to `process.env`
 * @property {number} readyTimeoutMs
 * @property {LogHandler} [onLog]
 * @property {(child: import('node:child_process').ChildProcess) => void} [onChild]
 *   called right after spawning, so a supervisor can kill a child that is still starting
 */

/**
 * @typedef {object} ExitInfo
 * @property {number|null} code
 * @property {string|null} signal
 */

/**
 * @typedef {object} Generation
 * @property {import('node:child_process').ChildProcessWithoutNullStreams} child
 * @property {number} pid
 * @property {number} port
 * @property {string} token
 * @property {string} version
 * @property {string} baseUrl
 * @property {number} readyAt            `Date.now()` when the ready line arrived
 * @property {Promise<ExitInfo>} exited  resolves when the process has exited
 * @property {() => boolean} hasExited
 * @property {LogEntry[]} stderrTail     the last stderr lines (bounded)
 */

/** A fresh bearer token: 32 random bytes, base64url. */
function newToken() {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Spawn the sidecar and resolve once its ready line arrived.
 * Rejects with {@link SidecarStartError}; the child is killed (or already gone) by then.
 * @param {SpawnOptions} o
 * @returns {Promise<Generation>}
 */
function spawnSidecar(o) {
  const token = newToken();
  const env = { ...(o.env ?? process.env), DOCSIDECAR_TOKEN: token };
  const argv = serveArgs({
    args: o.args,
    dataDir: o.dataDir,
    parentPid: process.pid,
    extraArgs: o.extraArgs,
  });
  /** @type {LogEntry[]} */
  const stderrTail = [];
  /** @type {ExitInfo|null} */
  let exitInfo = null;

  return new Promise((resolve, reject) => {
    /** @type {import('node:child_process').ChildProcessWithoutNullStreams} */
    let child;
    try {
      child = spawn(o.command, argv, {
        cwd: o.cwd,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        ...platform.spawnOptions(),
      });
    } catch (err) {
      reject(startError('spawn_failed', `cannot start ${o.command}: ${errMessage(err)}`, { cause: err }));
      return;
    }
    o.onChild?.(child);
    // We never write to stdin; it only exists so the sidecar sees EOF when we go away.
    // A write-side error (EPIPE after the child died) must not crash the parent.
    child.stdin.on('error', () => {});

    /** @type {(value: ExitInfo) => void} */
    let markExited = () => {};
    /** @type {Promise<ExitInfo>} */
    const exited = new Promise((res) => {
      markExited = res;
    });
    let settled = false;
    /** @type {import('./handshake').ErrorLine|null} */
    let errorLine = null;

    const log = (/** @type {LogEntry} */ entry, /** @type {'stderr'|'stdout'} */ stream) => {
      if (stream === 'stderr') {
        stderrTail.push(entry);
        if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      }
      if (o.onLog) {
        try {
          o.onLog(entry, { pid: child.pid, stream });
        } catch {
          // a throwing log handler must not break supervision
        }
      }
    };

    readline.createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
      log(parseLogLine(line), 'stderr');
    });

    readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      if (settled || errorLine) {
        log(parseLogLine(line), 'stdout'); // the contract says nothing else comes; keep it visible
        return;
      }
      const parsed = parseHandshakeLine(line);
      if (parsed.kind === 'ready') {
        settled = true;
        clearTimeout(timer);
        resolve({
          child,
          pid: parsed.ready.pid,
          port: parsed.ready.port,
          token,
          version: parsed.ready.version,
          baseUrl: `http://127.0.0.1:${parsed.ready.port}`,
          readyAt: Date.now(),
          exited,
          hasExited: () => exitInfo !== null,
          stderrTail,
        });
      } else if (parsed.kind === 'error') {
        errorLine = parsed.error; // reject once the process has exited, with its exit code
      } else {
        log(line, 'stdout');
      }
    });

    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      platform.forceExit(child);
      if (errorLine) {
        // it reported an error but did not exit: report the error, not a timeout
        reject(startError(errorLine.error, errorLine.message, { detail: errorLine.detail }));
        return;
      }
      reject(
        startError(
          'ready_timeout',
          `the sidecar printed no ready line within ${o.readyTimeoutMs} ms; last stderr lines:\n${formatTail(stderrTail)}`,
        ),
      );
    }, o.readyTimeoutMs);

    child.on('error', (err) => {
      // spawn failure (ENOENT, EACCES); 'exit' may never come
      if (exitInfo === null && child.pid === undefined) {
        exitInfo = { code: null, signal: null };
        markExited(exitInfo);
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(startError('spawn_failed', `cannot start ${o.command}: ${errMessage(err)}`, { cause: err }));
    });

    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      markExited(exitInfo);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (errorLine) {
        reject(
          startError(errorLine.error, errorLine.message, {
            detail: errorLine.detail,
            exitCode: code,
            signal,
          }),
        );
      } else {
        reject(
          startError(
            'exited_before_ready',
            `the sidecar exited (code ${code}, signal ${signal}) before it was ready; last stderr lines:\n${formatTail(stderrTail)}`,
            { exitCode: code, signal },
          ),
        );
      }
    });

    /**
     * @param {string} code
     * @param {string} message
     * @param {{detail?: unknown, exitCode?: number|null, signal?: string|null, cause?: unknown}} [extra]
     */
    function startError(code, message, extra = {}) {
      return new SidecarStartError({
        code,
        message,
        stderrTail: [...stderrTail],
        pid: child?.pid ?? null,
        ...extra,
      });
    }
  });
}

/** @param {unknown} err */
function errMessage(err) {
  return err instanceof Error ? err.message : String(err);
}

module.exports = { spawnSidecar, newToken };
