'use strict';
/**
 * Pure helpers for the sidecar's start-up protocol: the one JSON line it prints on stdout,
 * the command line it is started with, and the restart backoff.
 */

/**
 * @typedef {object} ReadyLine
 * @property {'ready'} event
 * @property {number} port
 * @property {number} pid
 * @property {string} version
 * @property {string|null} token_file
 */

/**
 * @typedef {object} ErrorLine
 * @property {'error'} event
 * @property {string} error    machine-readable code, e.g. `already_running`
 * @property {string} message
 * @property {unknown} [detail]
 */

/**
 * @typedef {{kind: 'ready', ready: ReadyLine}
 *   | {kind: 'error', error: ErrorLine}
 *   | {kind: 'invalid', reason: string}} HandshakeLine
 */

/**
 * Classify one stdout line of the sidecar.
 * @param {string} line
 * @returns {HandshakeLine}
 */
function parseHandshakeLine(line) {
  let value;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'invalid', reason: 'not JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'invalid', reason: 'not a JSON object' };
  }
  if (value.event === 'ready') {
    const { port, pid } = value;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return { kind: 'invalid', reason: `ready line with an invalid port: ${JSON.stringify(port)}` };
    }
    if (!Number.isInteger(pid) || pid < 1) {
      return { kind: 'invalid', reason: `ready line with an invalid pid: ${JSON.stringify(pid)}` };
    }
    return {
      kind: 'ready',
      ready: {
        event: 'ready',
        port,
        pid,
        version: String(value.version ?? ''),
        token_file: typeof value.token_file === 'string' ? value.token_file : null,
      },
    };
  }
  if (value.event === 'error') {
    return {
      kind: 'error',
      error: {
        event: 'error',
        error: typeof value.error === 'string' && value.error ? value.error : 'startup_failed',
        message: typeof value.message === 'string' ? value.message : 'the sidecar failed to start',
        detail: value.detail ?? null,
      },
    };
  }
  return { kind: 'invalid', reason: `unknown event ${JSON.stringify(value.event)}` };
}

/**
 * The full argument list: `args` (e.g. `['-m', 'backend']` for source mode, `[]` for the
 * packaged binary), then `serve` with the flags the lifecycle contract needs, then `extraArgs`.
 * @param {{args?: string[], dataDir: string, parentPid: number, extraArgs?: string[]}} o
 * @returns {string[]}
 */
function serveArgs({ args = [], dataDir, parentPid, extraArgs = [] }) {
  return [
    ...args,
    'serve',
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--parent-pid',
    String(parentPid),
    '--stdin-watch',
    ...extraArgs,
  ];
}

/**
 * @typedef {object} RestartPolicy
 * @property {number} maxRestarts   restarts allowed before giving up (within `resetAfterMs`)
 * @property {number} backoffMs     delay before the first restart
 * @property {number} factor        multiplier per further consecutive restart
 * @property {number} maxBackoffMs  upper bound of the delay
 * @property {number} resetAfterMs  a sidecar that stayed up this long resets the count
 */

/** @type {RestartPolicy} */
const DEFAULT_RESTART = Object.freeze({
  maxRestarts: 5,
  backoffMs: 250,
  factor: 2,
  maxBackoffMs: 30_000,
  resetAfterMs: 60_000,
});

/**
 * Normalise the `restart` option (`false` disables restarts).
 * @param {Partial<RestartPolicy>|false|undefined} option
 * @returns {RestartPolicy}
 */
function restartPolicy(option) {
  if (option === false) return { ...DEFAULT_RESTART, maxRestarts: 0 };
  const policy = { ...DEFAULT_RESTART, ...(option ?? {}) };
  for (const [key, value] of Object.entries(policy)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`restart.${key} must be a finite number >= 0, got ${String(value)}`);
    }
  }
  if (policy.factor < 1) throw new TypeError('restart.factor must be >= 1');
  return policy;
}

/**
 * Delay before restart number `attempt` (1-based): exponential, capped.
 * @param {number} attempt
 * @param {RestartPolicy} policy
 * @returns {number}
 */
function backoffDelay(attempt, policy) {
  const exp = policy.backoffMs * policy.factor ** Math.max(0, attempt - 1);
  return Math.round(Math.min(policy.maxBackoffMs, exp));
}

/**
 * Parse one stderr line: the sidecar logs JSON objects; anything else is returned as a string.
 * @param {string} line
 * @returns {Record<string, unknown>|string}
 */
function parseLogLine(line) {
  const trimmed = line.trim();
  if (trimmed.startsWith('{')) {
    try {
      const value = JSON.parse(trimmed);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
    } catch {
      // not JSON after all: a raw line (a native library's warning, a traceback)
    }
  }
  return line;
}

module.exports = {
  parseHandshakeLine,
  serveArgs,
  restartPolicy,
  backoffDelay,
  parseLogLine,
  DEFAULT_RESTART,
};
