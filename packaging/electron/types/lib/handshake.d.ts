export type ReadyLine = {
    event: "ready";
    port: number;
    pid: number;
    version: string;
    token_file: string | null;
};
export type ErrorLine = {
    event: "error";
    /**
     * machine-readable code, e.g. `already_running`
     */
    error: string;
    message: string;
    detail?: unknown;
};
export type HandshakeLine = {
    kind: "ready";
    ready: ReadyLine;
} | {
    kind: "error";
    error: ErrorLine;
} | {
    kind: "invalid";
    reason: string;
};
export type RestartPolicy = {
    /**
     * restarts allowed before giving up (within `resetAfterMs`)
     */
    maxRestarts: number;
    /**
     * delay before the first restart
     */
    backoffMs: number;
    /**
     * multiplier per further consecutive restart
     */
    factor: number;
    /**
     * upper bound of the delay
     */
    maxBackoffMs: number;
    /**
     * a sidecar that stayed up this long resets the count
     */
    resetAfterMs: number;
};
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
export function parseHandshakeLine(line: string): HandshakeLine;
/**
 * The full argument list: `args` (e.g. `['-m', 'backend']` for source mode, `[]` for the
 * packaged binary), then `serve` with the flags the lifecycle contract needs, then `extraArgs`.
 * @param {{args?: string[], dataDir: string, parentPid: number, extraArgs?: string[]}} o
 * @returns {string[]}
 */
export function serveArgs({ args, dataDir, parentPid, extraArgs }: {
    args?: string[];
    dataDir: string;
    parentPid: number;
    extraArgs?: string[];
}): string[];
/**
 * Normalise the `restart` option (`false` disables restarts).
 * @param {Partial<RestartPolicy>|false|undefined} option
 * @returns {RestartPolicy}
 */
export function restartPolicy(option: Partial<RestartPolicy> | false | undefined): RestartPolicy;
/**
 * Delay before restart number `attempt` (1-based): exponential, capped.
 * @param {number} attempt
 * @param {RestartPolicy} policy
 * @returns {number}
 */
export function backoffDelay(attempt: number, policy: RestartPolicy): number;
/**
 * Parse one stderr line: the sidecar logs JSON objects; anything else is returned as a string.
 * @param {string} line
 * @returns {Record<string, unknown>|string}
 */
export function parseLogLine(line: string): Record<string, unknown> | string;
/**
 * @typedef {object} RestartPolicy
 * @property {number} maxRestarts   restarts allowed before giving up (within `resetAfterMs`)
 * @property {number} backoffMs     delay before the first restart
 * @property {number} factor        multiplier per further consecutive restart
 * @property {number} maxBackoffMs  upper bound of the delay
 * @property {number} resetAfterMs  a sidecar that stayed up this long resets the count
 */
/** @type {RestartPolicy} */
export const DEFAULT_RESTART: RestartPolicy;
