/**
 * A request to the sidecar failed. For HTTP errors `status` is the response status and
 * `code`/`message`/`detail` come from the sidecar's error body
 * (`{"error": code, "message": …, "detail": …}`). For failures without a response `status`
 * is 0 and `code` is `unreachable` (connection refused/reset), `timeout` or `not_running`.
 */
export class SidecarError extends Error {
    /**
     * @param {{status: number, code: string, message: string, detail?: unknown,
     *          requestId?: string|null, method?: string, path?: string, cause?: unknown}} o
     */
    constructor({ status, code, message, detail, requestId, method, path, cause }: {
        status: number;
        code: string;
        message: string;
        detail?: unknown;
        requestId?: string | null;
        method?: string;
        path?: string;
        cause?: unknown;
    });
    /** @type {number} */
    status: number;
    /** @type {string} */
    code: string;
    /** @type {unknown} */
    detail: unknown;
    /** @type {string|null} */
    requestId: string | null;
    /** @type {string|undefined} */
    method: string | undefined;
    /** @type {string|undefined} */
    path: string | undefined;
}
/**
 * The sidecar could not be started. `code` is the sidecar's own error code when it printed
 * an `{"event":"error"}` line (e.g. `already_running`, exit code 3), otherwise one of
 * `spawn_failed`, `ready_timeout`, `exited_before_ready`, `protocol_error`, `stopped`.
 * `stderrTail` holds the last stderr lines (parsed JSON log records or raw strings).
 */
export class SidecarStartError extends Error {
    /**
     * @param {{code: string, message: string, detail?: unknown, exitCode?: number|null,
     *          signal?: string|null, stderrTail?: Array<Record<string, unknown>|string>,
     *          pid?: number|null, cause?: unknown}} o
     */
    constructor({ code, message, detail, exitCode, signal, stderrTail, pid, cause }: {
        code: string;
        message: string;
        detail?: unknown;
        exitCode?: number | null;
        signal?: string | null;
        stderrTail?: Array<Record<string, unknown> | string>;
        pid?: number | null;
        cause?: unknown;
    });
    /** @type {string} */
    code: string;
    /** @type {unknown} */
    detail: unknown;
    /** @type {number|null} */
    exitCode: number | null;
    /** @type {string|null} */
    signal: string | null;
    /** @type {Array<Record<string, unknown>|string>} */
    stderrTail: Array<Record<string, unknown> | string>;
    /** @type {number|null} the process that failed (null if it never started) */
    pid: number | null;
}
/**
 * Render log records for an error message, one per line.
 * @param {Array<Record<string, unknown>|string>} lines
 * @returns {string}
 */
export function formatTail(lines: Array<Record<string, unknown> | string>): string;
