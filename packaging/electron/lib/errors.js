'use strict';

/**
 * A request to the sidecar failed. For HTTP errors `status` is the response status and
 * `code`/`message`/`detail` come from the sidecar's error body
 * (`{"error": code, "message": …, "detail": …}`). For failures without a response `status`
 * is 0 and `code` is `unreachable` (connection refused/reset), `timeout` or `not_running`.
 */
class SidecarError extends Error {
  /**
   * @param {{status: number, code: string, message: string, detail?: unknown,
   *          requestId?: string|null, method?: string, path?: string, cause?: unknown}} o
   */
  constructor({ status, code, message, detail = null, requestId = null, method, path, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SidecarError';
    /** @type {number} */
    this.status = status;
    /** @type {string} */
    this.code = code;
    /** @type {unknown} */
    this.detail = detail;
    /** @type {string|null} */
    this.requestId = requestId;
    /** @type {string|undefined} */
    this.method = method;
    /** @type {string|undefined} */
    this.path = path;
  }
}

/**
 * The sidecar could not be started. `code` is the sidecar's own error code when it printed
 * an `{"event":"error"}` line (e.g. `already_running`, exit code 3), otherwise one of
 * `spawn_failed`, `ready_timeout`, `exited_before_ready`, `protocol_error`, `stopped`.
 * `stderrTail` holds the last stderr lines (parsed JSON log records or raw strings).
 */
class SidecarStartError extends Error {
  /**
   * @param {{code: string, message: string, detail?: unknown, exitCode?: number|null,
   *          signal?: string|null, stderrTail?: Array<Record<string, unknown>|string>,
   *          pid?: number|null, cause?: unknown}} o
   */
  constructor({ code, message, detail = null, exitCode = null, signal = null, stderrTail = [], pid = null, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SidecarStartError';
    /** @type {string} */
    this.code = code;
    /** @type {unknown} */
    this.detail = detail;
    /** @type {number|null} */
    this.exitCode = exitCode;
    /** @type {string|null} */
    this.signal = signal;
    /** @type {Array<Record<string, unknown>|string>} */
    this.stderrTail = stderrTail;
    /** @type {number|null} the process that failed (null if it never started) */
    this.pid = pid;
  }
}

/**
 * Render log records for an error message, one per line.
 * @param {Array<Record<string, unknown>|string>} lines
 * @returns {string}
 */
function formatTail(lines) {
  if (!lines.length) return '(no stderr output)';
  return lines
    .map((l) => (typeof l === 'string' ? l : `${l.level ?? ''} ${l.logger ?? ''}: ${l.msg ?? JSON.stringify(l)}`))
    .join('\n');
}

module.exports = { SidecarError, SidecarStartError, formatTail };
