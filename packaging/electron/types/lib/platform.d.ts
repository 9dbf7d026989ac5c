/** @param {NodeJS.Platform} [platform] */
export function isWindows(platform?: NodeJS.Platform): platform is "win32";
/**
 * Extra `child_process.spawn` options for the sidecar.
 * @returns {{windowsHide: boolean}}
 */
export function spawnOptions(): {
    windowsHide: boolean;
};
/**
 * Ask a child to exit cleanly (the first step of `stop()`).
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Platform} [platform]
 */
export function requestExit(child: import("node:child_process").ChildProcess, platform?: NodeJS.Platform): void;
/**
 * Kill a child that ignored `requestExit` (SIGKILL; TerminateProcess on Windows).
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Platform} [platform]
 */
export function forceExit(child: import("node:child_process").ChildProcess, platform?: NodeJS.Platform): void;
/**
 * Hard-kill a process by pid (SIGKILL; TerminateProcess on Windows). Used for the sidecar
 * process behind a one-file build's bootloader, which is not our direct child. Returns
 * whether a process was signalled.
 * @param {number} pid
 * @param {NodeJS.Platform} [platform]
 */
export function killPid(pid: number, platform?: NodeJS.Platform): boolean;
/**
 * Whether a process with this pid is running (zombies count as gone where detectable).
 * @param {number} pid
 * @returns {boolean}
 */
export function isProcessAlive(pid: number): boolean;
