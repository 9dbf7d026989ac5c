'use strict';
/**
 * docsidecar for Electron: start the sidecar from the main process, supervise it, talk to it.
 *
 *   const { startSidecar } = require('@docsidecar/electron');
 *   const sidecar = await startSidecar({ command, dataDir, onLog });
 *   await sidecar.search({ query: 'postgres vacuum', k: 5 });
 *   await sidecar.stop();
 *
 * See README.md. No runtime dependencies; Node >= 20 (Electron >= 29).
 */

const { SidecarApi } = require('./lib/api');
const { SidecarError, SidecarStartError } = require('./lib/errors');
const { parseHandshakeLine, parseLogLine, backoffDelay, restartPolicy, DEFAULT_RESTART } = require('./lib/handshake');
const { isProcessAlive } = require('./lib/platform');
const { Sidecar, SidecarClient, startSidecar } = require('./lib/sidecar');
const { SseParser } = require('./lib/sse-parser');
const { Subscription } = require('./lib/subscription');

module.exports = {
  startSidecar,
  Sidecar,
  SidecarClient,
  SidecarApi,
  SidecarError,
  SidecarStartError,
  Subscription,
  SseParser,
  parseHandshakeLine,
  parseLogLine,
  backoffDelay,
  restartPolicy,
  isProcessAlive,
  DEFAULT_RESTART,
};
