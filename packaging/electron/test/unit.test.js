'use strict';
// Pure parts of the client: SSE parsing, the handshake line, restart backoff, log lines,
// query strings. No processes.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { SseParser, parseHandshakeLine, parseLogLine, backoffDelay, restartPolicy, DEFAULT_RESTART } = require('../index.js');
const { queryString } = require('../lib/http');

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** @param {string[]} chunks */
function parseAll(chunks) {
  const p = new SseParser();
  const events = chunks.flatMap((c) => p.push(c));
  return { events, parser: p };
}

test('SSE: fields, comments, multi-line data, ids, retry, default type', () => {
  const stream =
    ': keep-alive\n' +
    'event: hello\ndata: {"last_event_id": 0}\nretry: 2000\n\n' +
    'id: 7\nevent: job\ndata: line one\ndata: line two\n\n' +
    'data:no space\n\n' +
    'data\n\n' +
    'id: 8\n\n' + // id without data: not dispatched, but remembered
    'data: after\n\n';
  const { events, parser } = parseAll([stream]);
  assert.deepEqual(
    events.map((e) => [e.type, e.data, e.id, e.lastEventId]),
    [
      ['hello', '{"last_event_id": 0}', null, ''],
      ['job', 'line one\nline two', '7', '7'],
      ['message', 'no space', null, '7'],
      ['message', '', null, '7'],
      ['message', 'after', null, '8'],
    ],
  );
  assert.equal(parser.retry, 2000);
  assert.equal(parser.comments, 1);
  assert.equal(parser.lastEventId, '8');
});

test('SSE: CR, LF and CRLF line ends, also split between chunks; BOM dropped', () => {
  const { events } = parseAll(['\uFEFFdata: a\r', '\nid: 1\r\r', 'data: b\rdata: c\r\n\r', '\n']);
  assert.deepEqual(
    events.map((e) => [e.data, e.lastEventId]),
    [
      ['a', '1'], // the id line came before the blank line that dispatched it
      ['b\nc', '1'],
    ],
  );
});

test('SSE: ids with NUL and non-numeric retry are ignored; unknown fields too', () => {
  const { events, parser } = parseAll(['id: 3\n\nid: 4\0x\nretry: 1s\nfoo: bar\ndata: x\n\n']);
  assert.equal(events.length, 1);
  assert.equal(events[0].lastEventId, '3');
  assert.equal(events[0].id, null);
  assert.equal(parser.retry, null);
});

test('SSE: any chunking of a stream gives the same events (randomised, seeded)', () => {
  const rand = rng(20240607);
  const ends = ['\n', '\r\n', '\r'];
  for (let round = 0; round < 200; round++) {
    let stream = '';
    const n = 1 + Math.floor(rand() * 8);
    for (let i = 0; i < n; i++) {
      const nl = ends[Math.floor(rand() * ends.length)];
      if (rand() < 0.3) stream += `: ping${nl}`;
      if (rand() < 0.5) stream += `id: ${i}${nl}`;
      if (rand() < 0.5) stream += `event: e${i}${nl}`;
      const lines = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < lines; j++) stream += `data: {"i":${i},"j":${j},"s":"é ✓"}${nl}`;
      stream += nl;
    }
    const whole = parseAll([stream]).events;
    assert.equal(whole.length, n, `round ${round}`);
    const chunks = [];
    for (let at = 0; at < stream.length; ) {
      const size = 1 + Math.floor(rand() * 6);
      chunks.push(stream.slice(at, at + size));
      at += size;
    }
    assert.deepEqual(parseAll(chunks).events, whole, `round ${round}: chunks ${JSON.stringify(chunks)}`);
  }
});

test('handshake: ready line, error line, and what is not a handshake', () => {
  assert.deepEqual(parseHandshakeLine('{"event":"ready","port":4000,"pid":12,"version":"0.1.0","token_file":null}'), {
    kind: 'ready',
    ready: { event: 'ready', port: 4000, pid: 12, version: '0.1.0', token_file: null },
  });
  const err = parseHandshakeLine('{"event":"error","error":"already_running","message":"m","detail":{"pid":1}}');
  assert.equal(err.kind, 'error');
  assert.equal(err.kind === 'error' && err.error.error, 'already_running');
  assert.deepEqual(err.kind === 'error' && err.error.detail, { pid: 1 });
  for (const line of [
    '',
    'ready',
    '[1]',
    'null',
    '{"event":"ready","port":0,"pid":1}',
    '{"event":"ready","port":70000,"pid":1}',
    '{"event":"ready","port":"80","pid":1}',
    '{"event":"ready","port":80,"pid":-1}',
    '{"event":"started"}',
  ]) {
    assert.equal(parseHandshakeLine(line).kind, 'invalid', line);
  }
  // an error line without a code still counts as an error
  const bare = parseHandshakeLine('{"event":"error"}');
  assert.equal(bare.kind === 'error' && bare.error.error, 'startup_failed');
});

test('restart backoff: exponential, non-decreasing, capped; bad policies refused', () => {
  const policy = restartPolicy({ backoffMs: 100, factor: 2, maxBackoffMs: 1000 });
  const delays = [1, 2, 3, 4, 5, 6, 50].map((a) => backoffDelay(a, policy));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(restartPolicy(false).maxRestarts, 0);
  assert.deepEqual(restartPolicy(undefined), { ...DEFAULT_RESTART });
  assert.throws(() => restartPolicy({ backoffMs: -1 }), TypeError);
  assert.throws(() => restartPolicy({ maxRestarts: Number.NaN }), TypeError);
  assert.throws(() => restartPolicy({ factor: 0.5 }), TypeError);
  const rand = rng(7);
  for (let i = 0; i < 100; i++) {
    const p = restartPolicy({ backoffMs: rand() * 1000, factor: 1 + rand() * 3, maxBackoffMs: rand() * 60000 });
    let previous = 0;
    for (let attempt = 1; attempt < 40; attempt++) {
      const d = backoffDelay(attempt, p);
      assert.ok(d >= previous && d <= Math.round(p.maxBackoffMs), `policy ${JSON.stringify(p)} attempt ${attempt}`);
      previous = d;
    }
  }
});

test('log lines: JSON objects parsed, everything else kept raw', () => {
  assert.deepEqual(parseLogLine('{"level":"INFO","msg":"ready"}'), { level: 'INFO', msg: 'ready' });
  assert.equal(parseLogLine('Traceback (most recent call last):'), 'Traceback (most recent call last):');
  assert.equal(parseLogLine('{not json'), '{not json');
  assert.equal(parseLogLine('[1,2]'), '[1,2]');
});

test('query strings: arrays repeat, null/undefined dropped, values encoded', () => {
  assert.equal(queryString(undefined), '');
  assert.equal(queryString({ a: undefined, b: null }), '');
  assert.equal(queryString({ scope: 'a b&c', tag: ['x', 'y'], limit: 5, flag: true }), '?scope=a+b%26c&tag=x&tag=y&limit=5&flag=true');
});
