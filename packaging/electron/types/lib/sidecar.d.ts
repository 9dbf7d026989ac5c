export type Generation = import("./spawn").Generation;
export type ExitInfo = import("./spawn").ExitInfo;
export type LogHandler = import("./spawn").LogHandler;
export type RestartPolicy = import("./handshake").RestartPolicy;
export type RequestOptions = import("./http").RequestOptions;
export type SubscribeOptions = import("./subscription").SubscribeOptions;
export type SidecarEvent = import("./subscription").SidecarEvent;
export type SidecarState = "starting" | "ready" | "restarting" | "stopping" | "stopped" | "failed";
export type StartOptions = {
    /**
     * the packaged `docsidecar` executable, or a Python interpreter
     */
    command: string;
    /**
     * arguments before `serve`: `[]` for the binary, `['-m', 'backend']` for Python
     */
    args?: string[] | undefined;
    /**
     * the sidecar's data directory (one sidecar per directory)
     */
    dataDir: string;
    /**
     * more `serve` flags, e.g. `['--log-level', 'DEBUG']`
     */
    extraArgs?: string[] | undefined;
    cwd?: string | undefined;
    /**
     * child environment (default `process.env`); the token is added
     */
    env?: NodeJS.ProcessEnv | undefined;
    /**
     * default 30 s
     */
    readyTimeoutMs?: number | undefined;
    /**
     * every stderr line: parsed JSON record, or the raw string
     */
    onLog?: import("./spawn").LogHandler | undefined;
    /**
     * crash restarts; `false` disables them
     */
    restart?: false | Partial<import("./handshake").RestartPolicy> | undefined;
};
export class Sidecar extends SidecarApi {
    /** Use {@link startSidecar}; the constructor has no side effects. @param {StartOptions} options */
    constructor(options: StartOptions);
    _options: {
        /**
         * the packaged `docsidecar` executable, or a Python interpreter
         */
        command: string;
        /**
         * arguments before `serve`: `[]` for the binary, `['-m', 'backend']` for Python
         */
        args?: string[] | undefined;
        /**
         * the sidecar's data directory (one sidecar per directory)
         */
        dataDir: string;
        /**
         * more `serve` flags, e.g. `['--log-level', 'DEBUG']`
         */
        extraArgs?: string[] | undefined;
        cwd?: string | undefined;
        /**
         * child environment (default `process.env`); the token is added
         */
        env?: NodeJS.ProcessEnv | undefined;
        /**
         * default 30 s
         */
        readyTimeoutMs: number;
        /**
         * every stderr line: parsed JSON record, or the raw string
         */
        onLog?: import("./spawn").LogHandler | undefined;
        /**
         * crash restarts; `false` disables them
         */
        restart?: false | Partial<import("./handshake").RestartPolicy> | undefined;
    };
    _policy: import("./handshake").RestartPolicy;
    /** @type {SidecarState} */
    _state: SidecarState;
    /** @type {Generation|null} */
    _gen: Generation | null;
    _attempts: number;
    /** @type {ReturnType<typeof setTimeout>|null} */
    _restartTimer: ReturnType<typeof setTimeout> | null;
    /** @type {import('node:child_process').ChildProcess|null} a child still handshaking */
    _spawningChild: import("node:child_process").ChildProcess | null;
    /** @type {Promise<unknown>|null} */
    _spawning: Promise<unknown> | null;
    /** @type {Set<{resolve: (g: Generation) => void, reject: (e: Error) => void}>} */
    _waiters: Set<{
        resolve: (g: Generation) => void;
        reject: (e: Error) => void;
    }>;
    /** @type {Set<Subscription>} */
    _subscriptions: Set<Subscription>;
    /** @type {Promise<ExitInfo|null>|null} */
    _stopping: Promise<ExitInfo | null> | null;
    /** @type {Error|null} */
    _failure: Error | null;
    /** @returns {SidecarState} */
    get state(): SidecarState;
    /** Port of the running process (changes on restart). */
    get port(): number | null;
    /** Pid of the running process (changes on restart). */
    get pid(): number | null;
    /** Bearer token of the running process (fresh for every process). */
    get token(): string | null;
    /** `http://127.0.0.1:<port>` of the running process. */
    get baseUrl(): string | null;
    get version(): string | null;
    /** Restarts since the last stable period. */
    get restarts(): number;
    /** Spawn the first process; resolves when it is ready. Called by {@link startSidecar}. */
    start(): Promise<this>;
    /**
     * Resolves with the running process (waiting while it restarts, up to `timeoutMs`).
     * @param {{signal?: AbortSignal, timeoutMs?: number}} [o]
     * @returns {Promise<{pid: number, port: number, token: string, baseUrl: string}>}
     */
    ready(o?: {
        signal?: AbortSignal;
        timeoutMs?: number;
    }): Promise<{
        pid: number;
        port: number;
        token: string;
        baseUrl: string;
    }>;
    /**
     * Whether a failed request should be retried on the restarted sidecar: the connection
     * failed, the process has in fact exited, a restart is under way, and the request is safe
     * to repeat (an idempotent method, or a refused connection that never reached the server).
     * @param {Generation} gen
     * @param {string} method
     * @param {unknown} err
     */
    _diedUnder(gen: Generation, method: string, err: unknown): Promise<boolean>;
    /**
     * Subscribe to `GET /v1/events`; reconnects by itself (see `lib/subscription.js`).
     * @param {(event: SidecarEvent) => void} onEvent
     * @param {SubscribeOptions} [options]
     * @returns {Subscription}
     */
    subscribe(onEvent: (event: SidecarEvent) => void, options?: SubscribeOptions): Subscription;
    /**
     * Stop the sidecar: POSIX SIGTERM (Windows: close its stdin), then a hard kill after
     * `graceMs`. Closes subscriptions; no restart follows. Idempotent.
     * @param {{graceMs?: number}} [o]
     * @returns {Promise<ExitInfo|null>} how the last process exited (null if none was running)
     */
    stop(o?: {
        graceMs?: number;
    }): Promise<ExitInfo | null>;
    /** @param {number} graceMs */
    _stop(graceMs: number): Promise<import("./spawn").ExitInfo | null>;
    /** @returns {Promise<Generation>} */
    _spawn(): Promise<Generation>;
    /** @param {Generation} gen */
    _adopt(gen: Generation): void;
    /**
     * @param {Generation} gen
     * @param {ExitInfo} info
     */
    _onExit(gen: Generation, info: ExitInfo): void;
    /** @param {Error} cause why a restart is needed */
    _scheduleRestart(cause: Error): void;
    /** @param {Error} cause */
    _fail(cause: Error): void;
    /**
     * @param {AbortSignal|undefined} signal
     * @param {number} timeoutMs  0 = no timeout
     * @returns {Promise<Generation>}
     */
    _whenReady(signal: AbortSignal | undefined, timeoutMs: number): Promise<Generation>;
    /** @param {Error} err */
    _rejectWaiters(err: Error): void;
}
/**
 * A client for an already running sidecar (no process management), e.g. in tests or a
 * utility process that got the port and token from the main process.
 */
export class SidecarClient extends SidecarApi {
    /** @param {{baseUrl: string, token: string}} target */
    constructor(target: {
        baseUrl: string;
        token: string;
    });
    baseUrl: string;
    token: string;
}
/**
 * Start the sidecar and wait until it is ready.
 * Rejects with a `SidecarStartError` (the sidecar's own error code, `ready_timeout`,
 * `exited_before_ready`, `spawn_failed`).
 * @param {StartOptions} options
 * @returns {Promise<Sidecar>}
 */
export function startSidecar(options: StartOptions): Promise<Sidecar>;
import { SidecarApi } from "./api";
import { Subscription } from "./subscription";
