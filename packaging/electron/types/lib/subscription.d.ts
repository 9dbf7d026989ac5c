export type SidecarEvent = {
    /**
     * `hello`, `resync`, or an event type published by the sidecar
     */
    type: string;
    /**
     * the event id (null for `hello`/`resync`/keep-alive-less events)
     */
    id: string | null;
    /**
     * parsed JSON data (the raw string if it was not JSON)
     */
    data: any;
    /**
     * the sidecar process that sent it
     */
    pid: number;
};
export type SubscribeOptions = {
    /**
     * resume after this id (first connection only)
     */
    lastEventId?: string | number | null | undefined;
    reconnectDelayMs?: number | undefined;
    /**
     * default 30 s
     */
    maxReconnectDelayMs?: number | undefined;
    /**
     * default 45 s (3× the sidecar's keep-alive)
     */
    idleTimeoutMs?: number | undefined;
    /**
     * default 10 s
     */
    connectTimeoutMs?: number | undefined;
    onError?: ((err: Error, info: {
        fatal: boolean;
    }) => void) | undefined;
    onOpen?: ((info: {
        pid: number;
        lastEventId: string | null;
    }) => void) | undefined;
};
export type EventSource = {
    /**
     *   resolves with the running sidecar (waiting while it restarts); rejects once it is stopped
     */
    connection: (signal: AbortSignal) => Promise<{
        baseUrl: string;
        token: string;
        pid: number;
    }>;
};
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
export class Subscription {
    /**
     * @param {EventSource} source
     * @param {(event: SidecarEvent) => void} onEvent
     * @param {SubscribeOptions} [options]
     */
    constructor(source: EventSource, onEvent: (event: SidecarEvent) => void, options?: SubscribeOptions);
    _source: EventSource;
    _onEvent: (event: SidecarEvent) => void;
    _options: SubscribeOptions;
    /** @type {string|null} */
    _lastEventId: string | null;
    /** @type {number|null} */
    _lastPid: number | null;
    /** @type {number|null} */
    _serverRetry: number | null;
    _closed: boolean;
    _connected: boolean;
    _life: AbortController;
    /** @type {AbortController|null} */
    _conn: AbortController | null;
    /** @type {(() => void)|null} */
    _wake: (() => void) | null;
    /** Resolves when the subscription has ended (closed, or a fatal error). */
    done: Promise<void>;
    /** The id that the next connection will send as `Last-Event-ID`. */
    get lastEventId(): string | null;
    /** Whether a stream is currently open. */
    get connected(): boolean;
    get closed(): boolean;
    /** Drop the current connection and reconnect now (e.g. after the computer woke up). */
    reconnect(): void;
    /** Stop for good. Idempotent; resolves once the stream is closed. */
    close(): Promise<void>;
    _run(): Promise<void>;
    /** @param {number} failures consecutive failed attempts */
    _delay(failures: number): number;
    /** @param {number} ms */
    _sleep(ms: number): Promise<any>;
    /**
     * @param {{baseUrl: string, token: string, pid: number}} conn
     * @returns {Promise<{opened: boolean, fatal?: boolean, error?: Error, reconnectNow?: boolean}>}
     */
    _connectOnce(conn: {
        baseUrl: string;
        token: string;
        pid: number;
    }): Promise<{
        opened: boolean;
        fatal?: boolean;
        error?: Error;
        reconnectNow?: boolean;
    }>;
    /** @param {SidecarEvent} event */
    _deliver(event: SidecarEvent): void;
    /**
     * @param {Error} err
     * @param {boolean|undefined} fatal
     */
    _report(err: Error, fatal: boolean | undefined): void;
    /** @param {() => void} fn */
    _safe(fn: () => void): void;
}
