'use strict';
/**
 * Every operating-system difference the client knows about lives here.
 *
 * - Spawning: `windowsHide` so no console window flashes up on Windows.
 * - Stopping: POSIX sends SIGTERM (the sidecar shuts down cleanly); Windows has no SIGTERM
 *   for child processes (`child.kill()` is TerminateProcess, a hard kill), so there the
 *   polite request is closing the child's stdin — the sidecar runs with `--stdin-watch` and
 *   exits cleanly on EOF. The hard kill after the grace period is SIGKILL / TerminateProcess.
 * - Liveness: `process.kill(pid, 0)` answers "exists" for a zombie too; on Linux
 *   `/proc/<pid>/stat` tells zombies apart. macOS zombies are reported alive.
 *
 * Only Linux runs in this project's CI; the Windows and macOS branches are untested here.
 */

const fs = require('node:fs');

/** @param {NodeJS.Platform} [platform] */
function isWindows(platform = process.platform) {
  return platform === 'win32';
}

/**
 * Extra `child_process.spawn` options for the sidecar.
 * @returns {{windowsHide: boolean}}
 */
function spawnOptions() {
  return { windowsHide: true };
}

/**
 * Ask a child to exit cleanly (the first step of `stop()`).
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Platform} [platform]
 */
function requestExit(child, platform = process.platform) {
  if (isWindows(platform)) {
    if (child.stdin && !child.stdin.destroyed) child.stdin.end();
    return;
  }
  child.kill('SIGTERM');
}

/**
 * Kill a child that ignored `requestExit` (SIGKILL; TerminateProcess on Windows).
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Platform} [platform]
 */
function forceExit(child, platform = process.platform) {
  child.kill(isWindows(platform) ? undefined : 'SIGKILL');
}

/**
 * Whether a process with this pid is running (zombies count as gone where detectable).
 * @param {number} pid
 * @returns {boolean}
 */
function isProcessAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
  if (process.platform === 'linux') {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Hard-kill a process by pid (SIGKILL; TerminateProcess on Windows). Used for the sidecar
 * process behind a one-file build's bootloader, which is not our direct child. Returns
 * whether a process was signalled.
 * @param {number} pid
 * @param {NodeJS.Platform} [platform]
 */
function killPid(pid, platform = process.platform) {
  try {
    process.kill(pid, isWindows(platform) ? undefined : 'SIGKILL');
    return true;
  } catch {
    return false; // already gone (ESRCH) or not ours (EPERM)
  }
}

module.exports = { isWindows, spawnOptions, requestExit, forceExit, killPid, isProcessAlive };
