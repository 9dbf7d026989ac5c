'use strict';
/**
 * The supervised sidecar: spawn, readiness, requests, events, crash restarts, stop.
 *
 * States: `ready` → (crash) `restarting` → `ready` … → `stopping` → `stopped`;
 * `failed` once restarts are exhausted. Events (an EventEmitter):
 *   'exit'       {pid, code, signal, expected}   every time a sidecar process exits
 *   'restarting' {attempt, delayMs, pid}         a crash was seen; a restart is scheduled
 *   'restart'    {attempt, pid, port, previousPid} a new process is ready (new port and token)
 *   'failed'     SidecarStartError              gave up restarting; requests now reject
 *   'stopped'    {code, signal}|null            stop() finished
 */

const { SidecarApi } = require('./api');
const { SidecarError, SidecarStartError } = require('./errors');
const { restartPolicy, backoffDelay } = require('./handshake');
const { httpRequest, DEFAULT_TIMEOUT_MS } = require('./http');
const platform = require('./platform');
const { spawnSidecar } = require('./spawn');
const { Subscription } = require('./subscription');

/**
 * @typedef {import('./spawn').Generation} Generation
 * @typedef {import('./spawn').ExitInfo} ExitInfo
 * @typedef {import('./spawn').LogHandler} LogHandler
 * @typedef {import('./handshake').RestartPolicy} RestartPolicy
 * @typedef {import('./http').RequestOptions} RequestOptions
 * @typedef {import('./subscription').SubscribeOptions} SubscribeOptions
 * @typedef {import('./subscription').SidecarEvent} SidecarEvent
 * @typedef {'starting'|'ready'|'restarting'|'stopping'|'stopped'|'failed'} SidecarState
 */

/**
 * @typedef {object} StartOptions
 * @property {string} command        the packaged `docsidecar` executable, or a Python interpreter
 * @property {string[]} [args]       arguments before `serve`: `[]` for the binary, `['-m', 'backend']` for Python
 * @property {string} dataDir        the sidecar's data directory (one sidecar per directory)
 * @property {string[]} [extraArgs]  more `serve` flags, e.g. `['--log-level', 'DEBUG']`
 * @property {string} [cwd]
 * @property {NodeJS.ProcessEnv} [env]   child environment (default `process.env`); the token is added
 * @property {number} [readyTimeoutMs]   default 30 s
 * @property {LogHandler} [onLog]        every stderr line: parsed JSON record, or the raw string
 * @property {Partial<RestartPolicy>|false} [restart]  crash restarts; `false` disables them
 */

const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** How long a failed request waits to learn whether the process died (its exit event). */
const EXIT_NOTICE_MS = 1000;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

class Sidecar extends SidecarApi {
  /** Use {@link startSidecar}; the constructor has no side effects. @param {StartOptions} options */
  constructor(options) {
    super();
    if (!options || typeof options.command !== 'string' || !options.command) {
      throw new TypeError('options.command (the sidecar executable) is required');
    }
    if (typeof options.dataDir !== 'string' || !options.dataDir) {
      throw new TypeError('options.dataDir is required');
    }
    this._options = { readyTimeoutMs: DEFAULT_READY_TIMEOUT_MS, ...options };
    this._policy = restartPolicy(options.restart);
    /** @type {SidecarState} */
    this._state = 'stopped';
    /** @type {Generation|null} */
    this._gen = null;
    this._attempts = 0;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this._restartTimer = null;
    /** @type {import('node:child_process').ChildProcess|null} a child still handshaking */
    this._spawningChild = null;
    /** @type {Promise<unknown>|null} */
    this._spawning = null;
    /** @type {Set<{resolve: (g: Generation) => void, reject: (e: Error) => void}>} */
    this._waiters = new Set();
    /** @type {Set<Subscription>} */
    this._subscriptions = new Set();
    /** @type {Promise<ExitInfo|null>|null} */
    this._stopping = null;
    /** @type {Error|null} */
    this._failure = null;
  }

  /** @returns {SidecarState} */
  get state() {
    return this._state;
  }

  /** Port of the running process (changes on restart). */
  get port() {
    return this._gen?.port ?? null;
  }

  /** Pid of the running process (changes on restart). */
  get pid() {
    return this._gen?.pid ?? null;
  }

  /** Bearer token of the running process (fresh for every process). */
  get token() {
    return this._gen?.token ?? null;
  }

  /** `http://127.0.0.1:<port>` of the running process. */
  get baseUrl() {
    return this._gen?.baseUrl ?? null;
  }

  get version() {
    return this._gen?.version ?? null;
  }

  /** Restarts since the last stable period. */
  get restarts() {
    return this._attempts;
  }

  /** Spawn the first process; resolves when it is ready. Called by {@link startSidecar}. */
  async start() {
    if (this._state !== 'stopped' || this._gen || this._stopping) {
      throw new Error('start() can only be called once');
    }
    this._state = 'starting';
    try {
      this._adopt(await this._spawn());
    } catch (err) {
      this._state = 'stopped';
      this._rejectWaiters(/** @type {Error} */ (err));
      throw err;
    }
    return this;
  }

  /**
   * Resolves with the running process (waiting while it restarts, up to `timeoutMs`).
   * @param {{signal?: AbortSignal, timeoutMs?: number}} [o]
   * @returns {Promise<{pid: number, port: number, token: string, baseUrl: string}>}
   */
  ready(o = {}) {
    return this._whenReady(o.signal, o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /**
   * Send a request with the token. Waits for a restarting sidecar (bounded by `timeoutMs`).
   * If the process dies under the request and a restart follows, the request is retried
   * once on the new process when that is safe (idempotent method, or connection refused).
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   * @returns {Promise<any>}
   */
  async request(method, path, options = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const gen = await this._whenReady(options.signal, timeoutMs);
    try {
      return await httpRequest(gen, method, path, options);
    } catch (err) {
      if (!(await this._diedUnder(gen, method, err))) throw err;
      // the process died under the request: once, wait for its replacement and retry
      return httpRequest(await this._whenReady(options.signal, timeoutMs), method, path, options);
    }
  }

  /**
   * Whether a failed request should be retried on the restarted sidecar: the connection
   * failed, the process has in fact exited, a restart is under way, and the request is safe
   * to repeat (an idempotent method, or a refused connection that never reached the server).
   * @param {Generation} gen
   * @param {string} method
   * @param {unknown} err
   */
  async _diedUnder(gen, method, err) {
    if (!(err instanceof SidecarError) || err.code !== 'unreachable') return false;
    const cause = /** @type {{cause?: {code?: string}}} */ (err.cause)?.cause;
    const refused = cause?.code === 'ECONNREFUSED';
    if (!refused && !IDEMPOTENT.has(method.toUpperCase())) return false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let timer;
    const exited = await Promise.race([
      gen.exited.then(() => true),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), EXIT_NOTICE_MS);
      }),
    ]);
    clearTimeout(timer);
    // let the 'exit' handler run first so the state says whether a restart follows
    await new Promise((resolve) => setImmediate(resolve));
    return Boolean(exited) && (this._state === 'restarting' || (this._state === 'ready' && this._gen !== gen));
  }

  /**
   * Subscribe to `GET /v1/events`; reconnects by itself (see `lib/subscription.js`).
   * @param {(event: SidecarEvent) => void} onEvent
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(onEvent, options) {
    if (this._state === 'stopping' || this._state === 'stopped' || this._state === 'failed') {
      throw new SidecarError({ status: 0, code: 'not_running', message: `the sidecar is ${this._state}` });
    }
    const sub = new Subscription({ connection: (signal) => this._whenReady(signal, 0) }, onEvent, options);
    this._subscriptions.add(sub);
    sub.done.finally(() => this._subscriptions.delete(sub));
    return sub;
  }

  /**
   * Stop the sidecar: POSIX SIGTERM (Windows: close its stdin), then a hard kill after
   * `graceMs`. Closes subscriptions; no restart follows. Idempotent.
   * @param {{graceMs?: number}} [o]
   * @returns {Promise<ExitInfo|null>} how the last process exited (null if none was running)
   */
  stop(o = {}) {
    if (!this._stopping) this._stopping = this._stop(o.graceMs ?? 5000);
    return this._stopping;
  }

  /** @param {number} graceMs */
  async _stop(graceMs) {
    this._state = 'stopping';
    if (this._restartTimer) clearTimeout(this._restartTimer);
    this._restartTimer = null;
    this._rejectWaiters(new SidecarError({ status: 0, code: 'not_running', message: 'the sidecar is stopping' }));
    const subs = [...this._subscriptions].map((s) => s.close());
    if (this._spawningChild) platform.forceExit(this._spawningChild);
    await this._spawning?.catch(() => {});
    /** @type {ExitInfo|null} */
    let info = null;
    const gen = this._gen;
    if (gen) info = gen.hasExited() ? await gen.exited : await terminate(gen, graceMs);
    await Promise.all(subs);
    if (gen) for (const s of [gen.child.stdin, gen.child.stdout, gen.child.stderr]) s.destroy();
    this._state = 'stopped';
    this.emit('stopped', info);
    return info;
  }

  /** @returns {Promise<Generation>} */
  _spawn() {
    const promise = spawnSidecar({
      command: this._options.command,
      args: this._options.args,
      extraArgs: this._options.extraArgs,
      dataDir: this._options.dataDir,
      cwd: this._options.cwd,
      env: this._options.env,
      readyTimeoutMs: this._options.readyTimeoutMs,
      onLog: this._options.onLog,
      onChild: (child) => {
        this._spawningChild = child;
      },
    });
    this._spawning = promise;
    return promise.finally(() => {
      this._spawningChild = null;
      this._spawning = null;
    });
  }

  /** @param {Generation} gen */
  _adopt(gen) {
    this._gen = gen;
    this._state = 'ready';
    gen.exited.then((info) => this._onExit(gen, info));
    for (const w of this._waiters) w.resolve(gen);
    this._waiters.clear();
  }

  /**
   * @param {Generation} gen
   * @param {ExitInfo} info
   */
  _onExit(gen, info) {
    killInner(gen);
    if (gen !== this._gen) return;
    const expected = this._state === 'stopping' || this._state === 'stopped';
    this.emit('exit', { pid: gen.pid, ...info, expected });
    if (expected) return;
    if (Date.now() - gen.readyAt >= this._policy.resetAfterMs) this._attempts = 0;
    this._state = 'restarting';
    this._scheduleRestart(
      new SidecarStartError({
        code: 'crashed',
        message: `the sidecar (pid ${gen.pid}) exited unexpectedly (code ${info.code}, signal ${info.signal})`,
        exitCode: info.code,
        signal: info.signal,
        stderrTail: [...gen.stderrTail],
      }),
    );
  }

  /** @param {Error} cause why a restart is needed */
  _scheduleRestart(cause) {
    this._attempts += 1;
    const attempt = this._attempts;
    if (attempt > this._policy.maxRestarts) {
      this._fail(cause);
      return;
    }
    const delayMs = backoffDelay(attempt, this._policy);
    this.emit('restarting', { attempt, delayMs, pid: this._gen?.pid ?? null, cause });
    this._restartTimer = setTimeout(() => {
      this._restartTimer = null;
      if (this._state !== 'restarting') return;
      this._spawn().then(
        (gen) => {
          if (this._state !== 'restarting') {
            terminate(gen, 0); // stop() ran while it was starting
            return;
          }
          const previousPid = this._gen?.pid ?? null;
          this._adopt(gen);
          this.emit('restart', { attempt, pid: gen.pid, port: gen.port, previousPid });
        },
        (err) => {
          if (this._state === 'restarting') this._scheduleRestart(err);
        },
      );
    }, delayMs);
  }

  /** @param {Error} cause */
  _fail(cause) {
    const err =
      cause instanceof SidecarStartError
        ? cause
        : new SidecarStartError({ code: 'crashed', message: cause.message, cause });
    err.message = `giving up after ${this._policy.maxRestarts} restart(s): ${err.message}`;
    this._state = 'failed';
    this._failure = err;
    this._rejectWaiters(err);
    this.emit('failed', err);
  }

  /**
   * @param {AbortSignal|undefined} signal
   * @param {number} timeoutMs  0 = no timeout
   * @returns {Promise<Generation>}
   */
  _whenReady(signal, timeoutMs) {
    if (this._state === 'ready' && this._gen) return Promise.resolve(this._gen);
    if (this._state === 'failed') return Promise.reject(this._failure);
    if (this._state !== 'restarting' && this._state !== 'starting') {
      return Promise.reject(
        new SidecarError({ status: 0, code: 'not_running', message: `the sidecar is ${this._state}` }),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      /** @type {ReturnType<typeof setTimeout>|null} */
      let timer = null;
      const waiter = {
        /** @param {Generation} g */
        resolve: (g) => {
          cleanup();
          resolve(g);
        },
        /** @param {Error} e */
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      const onAbort = () => waiter.reject(signal?.reason);
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this._waiters.delete(waiter);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs > 0) {
        timer = setTimeout(
          () =>
            waiter.reject(
              new SidecarError({
                status: 0,
                code: 'timeout',
                message: `the sidecar did not become ready within ${timeoutMs} ms (it is restarting)`,
              }),
            ),
          timeoutMs,
        );
      }
      this._waiters.add(waiter);
    });
  }

  /** @param {Error} err */
  _rejectWaiters(err) {
    const waiters = [...this._waiters];
    this._waiters.clear();
    for (const w of waiters) w.reject(err);
  }
}

/**
 * Ask a process to exit, kill it after `graceMs`, resolve with how it exited.
 * @param {Generation} gen
 * @param {number} graceMs
 * @returns {Promise<ExitInfo>}
 */
async function terminate(gen, graceMs) {
  if (graceMs > 0) platform.requestExit(gen.child);
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const forced = new Promise((resolve) => {
    timer = setTimeout(() => {
      platform.forceExit(gen.child);
      killInner(gen);
      resolve(undefined);
    }, graceMs);
  });
  await Promise.race([gen.exited, forced]);
  clearTimeout(timer);
  const info = await gen.exited;
  killInner(gen);
  return info;
}

/**
 * A one-file build's bootloader (our child) runs the sidecar as *its* child and the ready
 * line names that inner pid. Killing the bootloader does not kill the inner process, and it
 * would keep the data dir locked; so whenever our child is gone, make sure the inner one is.
 * @param {Generation} gen
 */
function killInner(gen) {
  if (gen.pid !== gen.child.pid && platform.isProcessAlive(gen.pid)) platform.killPid(gen.pid);
}

/**
 * A client for an already running sidecar (no process management), e.g. in tests or a
 * utility process that got the port and token from the main process.
 */
class SidecarClient extends SidecarApi {
  /** @param {{baseUrl: string, token: string}} target */
  constructor(target) {
    super();
    this.baseUrl = target.baseUrl.replace(/\/+$/, '');
    this.token = target.token;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   */
  request(method, path, options) {
    return httpRequest(this, method, path, options);
  }
}

/**
 * Start the sidecar and wait until it is ready.
 * Rejects with a `SidecarStartError` (the sidecar's own error code, `ready_timeout`,
 * `exited_before_ready`, `spawn_failed`).
 * @param {StartOptions} options
 * @returns {Promise<Sidecar>}
 */
async function startSidecar(options) {
  const sidecar = new Sidecar(options);
  return sidecar.start();
}

module.exports = { Sidecar, SidecarClient, startSidecar };
