'use strict';
/**
 * One HTTP request to a running sidecar, with the bearer token, a request id, a timeout and
 * the sidecar's error body turned into a {@link SidecarError}. Uses Node's built-in `fetch`.
 */

const crypto = require('node:crypto');

const { SidecarError } = require('./errors');

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * @typedef {Record<string, string|number|boolean|null|undefined|Array<string|number|boolean>>} Query
 */

/**
 * @typedef {object} RequestOptions
 * @property {unknown} [json]       sent as the JSON body (`Content-Type: application/json`)
 * @property {BodyInit} [body]      raw body: `FormData`, `Blob`, `Buffer`, string
 * @property {Record<string, string>} [headers]
 * @property {Query} [query]        appended as the query string (arrays repeat the key)
 * @property {AbortSignal} [signal] aborting rejects with the signal's reason (an `AbortError`)
 * @property {number} [timeoutMs]   whole request incl. reading the body; default 30 s, 0 = none
 * @property {string} [requestId]   sent as `X-Request-ID` (default: a random UUID)
 * @property {'auto'|'json'|'text'|'buffer'|'response'} [responseType]
 *   `auto` (default): JSON bodies parsed, `text/*` as string, 204 as null, else a Buffer;
 *   `response`: the raw `Response` (the timeout then only covers the headers)
 */

/**
 * @typedef {object} Target
 * @property {string} baseUrl  `http://127.0.0.1:<port>`
 * @property {string} token
 */

/**
 * @param {Target} target
 * @param {string} method
 * @param {string} path     starting with `/`, e.g. `/v1/status`
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
 */
async function httpRequest(target, method, path, options = {}) {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`path must start with "/", got ${JSON.stringify(path)}`);
  }
  const { json, body, query, signal, responseType = 'auto' } = options;
  if (json !== undefined && body !== undefined) throw new TypeError('pass either json or body, not both');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const requestId = options.requestId ?? crypto.randomUUID();
  /** @type {Record<string, string>} */
  const headers = {
    Accept: 'application/json',
    ...options.headers,
    Authorization: `Bearer ${target.token}`,
    'X-Request-ID': requestId,
  };
  /** @type {BodyInit|undefined} */
  let payload = body;
  if (json !== undefined) {
    payload = JSON.stringify(json);
    headers['Content-Type'] = 'application/json';
  }
  const where = { method, path, requestId };
  const timeoutError = new SidecarError({
    status: 0,
    code: 'timeout',
    message: `${method} ${path} timed out after ${timeoutMs} ms`,
    ...where,
  });
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal) {
    if (signal.aborted) throw signal.reason;
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const timer = timeoutMs > 0 ? setTimeout(() => controller.abort(timeoutError), timeoutMs) : null;
  const cleanup = () => {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  try {
    /** @type {Response} */
    let res;
    try {
      res = await fetch(target.baseUrl + path + queryString(query), {
        method,
        headers,
        body: payload,
        signal: controller.signal,
        // a streamed body (e.g. a file Blob's stream) needs half-duplex in Node's fetch
        ...(payload && typeof payload === 'object' && 'getReader' in payload ? { duplex: 'half' } : {}),
      });
    } catch (err) {
      throw connectionError(err, controller.signal, timeoutError, where);
    }
    const answeredId = res.headers.get('x-request-id') ?? requestId;
    if (!res.ok) {
      throw await errorFromResponse(res, { ...where, requestId: answeredId }).catch((err) => {
        throw connectionError(err, controller.signal, timeoutError, where);
      });
    }
    if (responseType === 'response') return res;
    try {
      return await readBody(res, responseType);
    } catch (err) {
      throw connectionError(err, controller.signal, timeoutError, where);
    }
  } finally {
    cleanup();
  }
}

/**
 * @param {Response} res
 * @param {'auto'|'json'|'text'|'buffer'} type
 */
async function readBody(res, type) {
  if (type === 'json') return res.json();
  if (type === 'text') return res.text();
  if (type === 'buffer') return Buffer.from(await res.arrayBuffer());
  if (res.status === 204) return null;
  const contentType = res.headers.get('content-type') ?? '';
  if (/[/+]json\b/i.test(contentType)) {
    const text = await res.text();
    return text === '' ? null : JSON.parse(text);
  }
  if (contentType.startsWith('text/')) return res.text();
  return Buffer.from(await res.arrayBuffer());
}

/**
 * Build the {@link SidecarError} for a non-2xx response.
 * @param {Response} res
 * @param {{method: string, path: string, requestId: string}} where
 * @returns {Promise<SidecarError>}
 */
async function errorFromResponse(res, where) {
  const text = await res.text();
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not the sidecar's JSON error envelope (a proxy? another program on the port?)
  }
  if (parsed && typeof parsed === 'object' && typeof parsed.error === 'string') {
    return new SidecarError({
      status: res.status,
      code: parsed.error,
      message: typeof parsed.message === 'string' ? parsed.message : res.statusText,
      detail: parsed.detail ?? null,
      ...where,
    });
  }
  return new SidecarError({
    status: res.status,
    code: `http_${res.status}`,
    message: `${where.method} ${where.path}: HTTP ${res.status} ${res.statusText}`,
    detail: text ? { body: text.slice(0, 1000) } : null,
    ...where,
  });
}

/**
 * Map a fetch failure to the error the caller sees.
 * @param {unknown} err
 * @param {AbortSignal} internal
 * @param {SidecarError} timeoutError
 * @param {{method: string, path: string, requestId: string}} where
 */
function connectionError(err, internal, timeoutError, where) {
  if (err instanceof SidecarError) return err;
  if (internal.aborted) {
    return internal.reason === timeoutError ? timeoutError : internal.reason ?? err;
  }
  const cause = /** @type {{cause?: {code?: string, message?: string}}} */ (err)?.cause;
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  return new SidecarError({
    status: 0,
    code: 'unreachable',
    message: `${where.method} ${where.path}: cannot reach the sidecar (${detail})`,
    cause: err,
    ...where,
  });
}

/**
 * @param {Query|undefined} query
 * @returns {string}
 */
function queryString(query) {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const qs = params.toString();
  return qs ? `?${qs}` : '';
}

module.exports = { httpRequest, queryString, errorFromResponse, DEFAULT_TIMEOUT_MS };
