/**
 * a parsed JSON log record of the sidecar (fields ts, level, logger, msg, request_id, …)
 * or a raw line when it was not JSON
 */
export type LogEntry = Record<string, unknown> | string;
export type LogHandler = (entry: LogEntry, meta: {
    pid: number | undefined;
    stream: "stderr" | "stdout";
}) => void;
export type SpawnOptions = {
    /**
     * executable: the packaged `docsidecar` binary or a Python
     */
    command: string;
    /**
     * arguments before `serve` (`['-m', 'backend']` for Python)
     */
    args?: string[] | undefined;
    /**
     * arguments after the lifecycle flags (e.g. `--log-level DEBUG`)
     */
    extraArgs?: string[] | undefined;
    dataDir: string;
    cwd?: string | undefined;
    /**
     * environment; defaults to `process.env`
     */
    env?: NodeJS.ProcessEnv | undefined;
    readyTimeoutMs: number;
    onLog?: LogHandler | undefined;
    /**
     * called right after spawning, so a supervisor can kill a child that is still starting
     */
    onChild?: ((child: import("node:child_process").ChildProcess) => void) | undefined;
};
export type ExitInfo = {
    code: number | null;
    signal: string | null;
};
export type Generation = {
    child: import("node:child_process").ChildProcessWithoutNullStreams;
    pid: number;
    port: number;
    token: string;
    version: string;
    baseUrl: string;
    /**
     * `Date.now()` when the ready line arrived
     */
    readyAt: number;
    /**
     * resolves when the process has exited
     */
    exited: Promise<ExitInfo>;
    hasExited: () => boolean;
    /**
     * the last stderr lines (bounded)
     */
    stderrTail: LogEntry[];
};
/**
 * Spawn the sidecar and resolve once its ready line arrived.
 * Rejects with {@link SidecarStartError}; the child is killed (or already gone) by then.
 * @param {SpawnOptions} o
 * @returns {Promise<Generation>}
 */
export function spawnSidecar(o: SpawnOptions): Promise<Generation>;
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
export function newToken(): string;
