'use strict';
/**
 * `GET /v1/events` as a subscription that survives dropped connections and sidecar restarts.
 *
 * - Each (re)connection sends `Last-Event-ID` (the last id seen), so the sidecar replays what
 *   was missed; when it cannot (the client fell behind its buffer) it sends `resync`.
 * - Event ids belong to one sidecar process. After a restart (a new pid) the old id means
 *   nothing, so the subscription reconnects without it and delivers a synthetic
 *   `{type: 'resync', data: {reason: 'restarted', …}}` after the new process's `hello`.
 *   On `resync` the app should re-read the state it shows (jobs, documents) via the API.
 * - A connection with no bytes (not even the sidecar's 15 s keep-alive comment) for
 *   `idleTimeoutMs` is considered dead and replaced.
 * - Reconnection waits `reconnectDelayMs` (default: the server's `retry`, else 1 s), doubling
 *   on consecutive failures up to `maxReconnectDelayMs`; while the sidecar restarts it waits
 *   for the new process. 4xx answers (other than 408/429) are fatal: `onError(err, {fatal: true})`.
 */

const { SidecarError } = require('./errors');
const { errorFromResponse } = require('./http');
const { SseParser } = require('./sse-parser');

/**
 * @typedef {object} SidecarEvent
 * @property {string} type        `hello`, `resync`, or an event type published by the sidecar
 * @property {string|null} id     the event id (null for `hello`/`resync`/keep-alive-less events)
 * @property {any} data           parsed JSON data (the raw string if it was not JSON)
 * @property {number} pid         the sidecar process that sent it
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {string|number|null} [lastEventId]  resume after this id (first connection only)
 * @property {number} [reconnectDelayMs]
 * @property {number} [maxReconnectDelayMs]     default 30 s
 * @property {number} [idleTimeoutMs]           default 45 s (3× the sidecar's keep-alive)
 * @property {number} [connectTimeoutMs]        default 10 s
 * @property {(err: Error, info: {fatal: boolean}) => void} [onError]
 * @property {(info: {pid: number, lastEventId: string|null}) => void} [onOpen]
 */

/**
 * @typedef {object} EventSource
 * @property {(signal: AbortSignal) => Promise<{baseUrl: string, token: string, pid: number}>} connection
 *   resolves with the running sidecar (waiting while it restarts); rejects once it is stopped
 */

class Subscription {
  /**
   * @param {EventSource} source
   * @param {(event: SidecarEvent) => void} onEvent
   * @param {SubscribeOptions} [options]
   */
  constructor(source, onEvent, options = {}) {
    if (typeof onEvent !== 'function') throw new TypeError('onEvent must be a function');
    this._source = source;
    this._onEvent = onEvent;
    this._options = options;
    /** @type {string|null} */
    this._lastEventId = options.lastEventId == null ? null : String(options.lastEventId);
    /** @type {number|null} */
    this._lastPid = null;
    /** @type {number|null} */
    this._serverRetry = null;
    this._closed = false;
    this._connected = false;
    this._life = new AbortController(); // aborted by close()
    /** @type {AbortController|null} */
    this._conn = null;
    /** @type {(() => void)|null} */
    this._wake = null;
    /** Resolves when the subscription has ended (closed, or a fatal error). */
    this.done = this._run();
  }

  /** The id that the next connection will send as `Last-Event-ID`. */
  get lastEventId() {
    return this._lastEventId;
  }

  /** Whether a stream is currently open. */
  get connected() {
    return this._connected;
  }

  get closed() {
    return this._closed;
  }

  /** Drop the current connection and reconnect now (e.g. after the computer woke up). */
  reconnect() {
    this._conn?.abort(new Error('reconnect requested'));
    this._wake?.();
  }

  /** Stop for good. Idempotent; resolves once the stream is closed. */
  close() {
    if (!this._closed) {
      this._closed = true;
      this._life.abort(new Error('subscription closed'));
      this._conn?.abort(new Error('subscription closed'));
      this._wake?.();
    }
    return this.done;
  }

  async _run() {
    let failures = 0;
    while (!this._closed) {
      let conn;
      try {
        conn = await this._source.connection(this._life.signal);
      } catch (err) {
        if (!this._closed) this._report(asError(err), true);
        break;
      }
      if (this._closed) break;
      const outcome = await this._connectOnce(conn);
      if (this._closed) break;
      if (outcome.error) this._report(outcome.error, outcome.fatal);
      if (outcome.fatal) break;
      failures = outcome.opened ? 0 : failures + 1;
      if (outcome.reconnectNow) continue;
      await this._sleep(this._delay(failures));
    }
    this._closed = true;
    this._connected = false;
  }

  /** @param {number} failures consecutive failed attempts */
  _delay(failures) {
    const base = this._options.reconnectDelayMs ?? this._serverRetry ?? 1000;
    const max = this._options.maxReconnectDelayMs ?? 30_000;
    return Math.min(max, base * 2 ** Math.max(0, failures - 1));
  }

  /** @param {number} ms */
  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this._wake = done;
      function done() {
        clearTimeout(timer);
        resolve(undefined);
      }
    }).finally(() => {
      this._wake = null;
    });
  }

  /**
   * @param {{baseUrl: string, token: string, pid: number}} conn
   * @returns {Promise<{opened: boolean, fatal?: boolean, error?: Error, reconnectNow?: boolean}>}
   */
  async _connectOnce(conn) {
    const restarted = this._lastPid !== null && this._lastPid !== conn.pid;
    const controller = new AbortController();
    this._conn = controller;
    /** @type {Record<string, string>} */
    const headers = {
      Accept: 'text/event-stream',
      'Cache-Control': 'no-cache',
      Authorization: `Bearer ${conn.token}`,
    };
    if (!restarted && this._lastEventId !== null) headers['Last-Event-ID'] = this._lastEventId;
    const connectTimer = setTimeout(
      () => controller.abort(new Error('connect timeout')),
      this._options.connectTimeoutMs ?? 10_000,
    );
    let opened = false;
    /** @type {ReturnType<typeof setTimeout>|null} */
    let idleTimer = null;
    try {
      const res = await fetch(`${conn.baseUrl}/v1/events`, { headers, signal: controller.signal });
      clearTimeout(connectTimer);
      if (!res.ok) {
        const err = await errorFromResponse(res, { method: 'GET', path: '/v1/events', requestId: '' });
        const fatal = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
        return { opened: false, fatal, error: err };
      }
      if (!res.body) return { opened: false, error: new Error('event stream without a body') };
      opened = true;
      this._connected = true;
      const idleMs = this._options.idleTimeoutMs ?? 45_000;
      const armIdle = () => {
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = setTimeout(() => controller.abort(new Error('idle timeout')), idleMs);
      };
      armIdle();
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let pendingResync = restarted;
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        armIdle();
        for (const raw of parser.push(decoder.decode(value, { stream: true }))) {
          if (parser.retry !== null) this._serverRetry = parser.retry;
          if (raw.id !== null) this._lastEventId = raw.id;
          this._deliver({ type: raw.type, id: raw.id, data: parseData(raw.data), pid: conn.pid });
          if (raw.type === 'hello') {
            if (pendingResync) {
              pendingResync = false;
              this._lastEventId = null;
              this._deliver({
                type: 'resync',
                id: null,
                data: { reason: 'restarted', previous_pid: this._lastPid, pid: conn.pid },
                pid: conn.pid,
              });
            }
            this._lastPid = conn.pid;
            this._safe(() => this._options.onOpen?.({ pid: conn.pid, lastEventId: this._lastEventId }));
          }
        }
      }
      return { opened };
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      const requested = reason instanceof Error && reason.message === 'reconnect requested';
      if (this._closed || requested) return { opened, reconnectNow: requested };
      return { opened, error: wrap(reason) };
    } finally {
      clearTimeout(connectTimer);
      if (idleTimer) clearTimeout(idleTimer);
      this._connected = false;
      this._conn = null;
      controller.abort(); // releases the socket if the loop ended another way
    }
  }

  /** @param {SidecarEvent} event */
  _deliver(event) {
    try {
      this._onEvent(event);
    } catch (err) {
      this._report(asError(err), false);
    }
  }

  /**
   * @param {Error} err
   * @param {boolean|undefined} fatal
   */
  _report(err, fatal) {
    this._safe(() => this._options.onError?.(err, { fatal: Boolean(fatal) }));
  }

  /** @param {() => void} fn */
  _safe(fn) {
    try {
      fn();
    } catch {
      // callbacks must not break the stream
    }
  }
}

/** @param {string} data */
function parseData(data) {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

/** @param {unknown} err */
function asError(err) {
  return err instanceof Error ? err : new Error(String(err));
}

/** @param {unknown} err */
function wrap(err) {
  if (err instanceof SidecarError) return err;
  const e = asError(err);
  const cause = /** @type {{cause?: {code?: string}}} */ (e).cause;
  return new SidecarError({
    status: 0,
    code: e.message === 'idle timeout' ? 'idle_timeout' : 'unreachable',
    message: `event stream interrupted: ${cause?.code ?? e.message}`,
    method: 'GET',
    path: '/v1/events',
    cause: e,
  });
}

module.exports = { Subscription };
