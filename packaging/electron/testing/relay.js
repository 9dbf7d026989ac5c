'use strict';
// A TCP relay in front of the sidecar whose connections a test can cut, to simulate a dropped
// event stream without restarting the sidecar. Not a test file.
//
// The sidecar refuses any Host header but its own 127.0.0.1:<port> (DNS-rebinding guard), so
// the relay rewrites the Host line of each connection's first request — the only request on
// an event-stream connection — and records the request heads it forwarded.
const net = require('node:net');

/**
 * @param {number} targetPort
 * @returns {Promise<{port: number, heads: string[], cut: () => void, refuse: (on: boolean) => void, close: () => Promise<void>}>}
 */
function startRelay(targetPort) {
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  /** @type {string[]} */
  const heads = [];
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    let buffered = Buffer.alloc(0);
    let forwarding = false;
    client.on('data', (chunk) => {
      if (forwarding) {
        upstream.write(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1').replace(/^host:.*$/im, `Host: 127.0.0.1:${targetPort}`);
      heads.push(head);
      upstream.write(Buffer.concat([Buffer.from(head, 'latin1'), buffered.subarray(end)]));
      forwarding = true;
    });
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (server.address());
      resolve({
        port,
        heads,
        cut: () => {
          for (const s of sockets) s.destroy();
        },
        refuse: (on) => {
          refusing = on;
        },
        close: () =>
          new Promise((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}

module.exports = { startRelay };
