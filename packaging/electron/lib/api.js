'use strict';
/**
 * Typed helpers for the sidecar's HTTP API. Subclasses provide `request()`; every helper is
 * a thin call of it, so errors are {@link import('./errors').SidecarError}s with the
 * sidecar's `code`, `message`, `detail` and the `requestId` to find in its logs.
 *
 * Shapes marked "loose" are documented by the sidecar's OpenAPI schema
 * (`GET /v1/openapi/openapi.json`, see `openapi()`), which is the authority.
 */

const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');

/**
 * @typedef {import('./http').RequestOptions} RequestOptions
 * @typedef {Pick<RequestOptions, 'signal'|'timeoutMs'|'requestId'>} CallOptions
 * @typedef {'starting'|'ready'|'degraded'|'failed'|'stopped'|'disabled'} ComponentState
 */

/**
 * @typedef {object} Status
 * @property {string} version
 * @property {number} pid
 * @property {number} port
 * @property {string} data_dir
 * @property {number} schema_version
 * @property {Record<string, number>} counts
 * @property {Record<string, {state: ComponentState, error: {code: string, message: string}|null}>} components
 */

/**
 * A document (loose: see the OpenAPI schema for every field).
 * @typedef {{id: string, title?: string, path?: string|null, scope?: string, tags?: string[],
 *            status?: string, mime?: string, size?: number, sha256?: string} & Record<string, any>} Document
 */

/** @typedef {{document: Document, job_id: number}} AddDocumentResult */
/** @typedef {{items: Document[], next_cursor: string|null}} DocumentPage */

/**
 * @typedef {object} ListDocumentsQuery
 * @property {string} [scope]
 * @property {string} [tag]
 * @property {string} [status]
 * @property {number} [folder_id]
 * @property {string} [source]
 * @property {number} [limit]
 * @property {string} [cursor]   `next_cursor` of the previous page
 */

/**
 * A job (loose).
 * @typedef {{id: number, kind?: string, state: 'queued'|'running'|'done'|'failed'|'cancelled',
 *            document_id?: string|null, progress?: Record<string, any>, error?: any} & Record<string, any>} Job
 */

/** @typedef {{state?: string, kind?: string, document_id?: string, limit?: number, before?: number}} ListJobsQuery */

/**
 * @typedef {object} FolderSpec
 * @property {string} path
 * @property {string} [scope]
 * @property {boolean} [recursive]   default true
 * @property {string[]} [include]    glob patterns
 * @property {string[]} [exclude]
 */

/**
 * A watched folder (loose).
 * @typedef {{id: number, path: string, scope: string, recursive: boolean, include: string[],
 *            exclude: string[]} & Record<string, any>} Folder
 */

/**
 * @typedef {object} SearchFilters
 * @property {string[]} [scopes]
 * @property {string[]} [document_ids]
 * @property {string[]} [tags]
 * @property {string[]} [mime_types]
 * @property {string} [path_prefix]
 * @property {string|number} [modified_after]
 * @property {string|number} [modified_before]
 */

/**
 * @typedef {object} SearchRequest
 * @property {string} query
 * @property {'hybrid'|'semantic'|'keyword'} [mode]
 * @property {number} [k]
 * @property {SearchFilters} [filters]
 * @property {string} [cursor]
 */

/**
 * A search hit (loose).
 * @typedef {{chunk_id?: string|number, document_id: string, text?: string, snippet?: any,
 *            score?: number, scores?: Record<string, number>, page?: number|null} & Record<string, any>} SearchHit
 */

/** @typedef {{hits: SearchHit[]} & Record<string, any>} SearchResult */

/**
 * @typedef {object} ContextRequest
 * @property {string} question
 * @property {number} [token_budget]
 * @property {SearchFilters} [filters]
 */

/** @typedef {Record<string, any>} ContextResult   loose: passages with citations */
/** @typedef {Record<string, any>} SyncStatus      loose */

/**
 * @typedef {object} SyncSession
 * @property {string} supabase_url
 * @property {string} anon_key
 * @property {string} access_token
 * @property {string} refresh_token
 */

/**
 * @typedef {object} UploadOptions
 * @property {string} [filename]     the name the sidecar records (default: the path's basename)
 * @property {string} [contentType]  default `application/octet-stream`
 * @property {string} [scope]
 * @property {string[]} [tags]
 */

/** Upload/indexing calls can take long; their default timeout. */
const UPLOAD_TIMEOUT_MS = 10 * 60_000;

class SidecarApi extends EventEmitter {
  constructor() {
    super();
  }

  /**
   * Send a request (implemented by subclasses).
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   * @returns {Promise<any>}
   */
  // eslint-disable-next-line no-unused-vars
  async request(method, path, options) {
    throw new Error('not implemented');
  }

  // --- system ---------------------------------------------------------------------------

  /** @param {CallOptions} [o] @returns {Promise<{status: 'ok'}>} */
  health(o) {
    return this.request('GET', '/v1/health', o);
  }

  /** @param {CallOptions} [o] @returns {Promise<Status>} */
  status(o) {
    return this.request('GET', '/v1/status', o);
  }

  /** Prometheus text format. @param {CallOptions} [o] @returns {Promise<string>} */
  metrics(o) {
    return this.request('GET', '/v1/metrics', { ...o, responseType: 'text' });
  }

  /** The OpenAPI schema. @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  openapi(o) {
    return this.request('GET', '/v1/openapi/openapi.json', o);
  }

  // --- documents ------------------------------------------------------------------------

  /**
   * Index a local file in place (`POST /v1/documents {path}`); answers 202 before indexing.
   * @param {string} filePath
   * @param {{scope?: string, tags?: string[]} & CallOptions} [o]
   * @returns {Promise<AddDocumentResult>}
   */
  addDocumentPath(filePath, o = {}) {
    const { scope, tags, ...call } = o;
    return this.request('POST', '/v1/documents', { ...call, json: { path: filePath, scope, tags } });
  }

  /**
   * Upload bytes as a document (multipart `file`, `scope`, `tags`); the sidecar keeps a copy.
   * @param {Blob|Uint8Array|ArrayBuffer|string} data   string = file contents (UTF-8)
   * @param {UploadOptions & CallOptions} [o]
   * @returns {Promise<AddDocumentResult>}
   */
  uploadDocument(data, o = {}) {
    const { filename = 'upload', contentType = 'application/octet-stream', scope, tags, ...call } = o;
    const blob = data instanceof Blob ? data : new Blob([/** @type {BlobPart} */ (data)], { type: contentType });
    const form = new FormData();
    form.append('file', blob, filename);
    if (scope !== undefined) form.append('scope', scope);
    for (const tag of tags ?? []) form.append('tags', tag);
    return this.request('POST', '/v1/documents', { timeoutMs: UPLOAD_TIMEOUT_MS, ...call, body: form });
  }

  /**
   * Upload a file from disk, streamed (not read into memory first).
   * @param {string} filePath
   * @param {UploadOptions & CallOptions} [o]
   * @returns {Promise<AddDocumentResult>}
   */
  async uploadFile(filePath, o = {}) {
    const blob = await fs.openAsBlob(filePath, { type: o.contentType ?? 'application/octet-stream' });
    return this.uploadDocument(blob, { filename: path.basename(filePath), ...o });
  }

  /** @param {ListDocumentsQuery & CallOptions} [o] @returns {Promise<DocumentPage>} */
  listDocuments(o = {}) {
    const { signal, timeoutMs, requestId, ...query } = o;
    return this.request('GET', '/v1/documents', { signal, timeoutMs, requestId, query });
  }

  /** @param {string} id @param {CallOptions} [o] @returns {Promise<Document>} */
  getDocument(id, o) {
    return this.request('GET', `/v1/documents/${seg(id)}`, o);
  }

  /** The original bytes. @param {string} id @param {CallOptions} [o] @returns {Promise<Buffer>} */
  getDocumentContent(id, o) {
    return this.request('GET', `/v1/documents/${seg(id)}/content`, { ...o, responseType: 'buffer' });
  }

  /**
   * @param {string} id
   * @param {{offset?: number, limit?: number} & CallOptions} [o]
   * @returns {Promise<Record<string, any>>}
   */
  getDocumentChunks(id, o = {}) {
    const { offset, limit, ...call } = o;
    return this.request('GET', `/v1/documents/${seg(id)}/chunks`, { ...call, query: { offset, limit } });
  }

  /** @param {string} id @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  deleteDocument(id, o) {
    return this.request('DELETE', `/v1/documents/${seg(id)}`, o);
  }

  // --- jobs and ingest ------------------------------------------------------------------

  /** @param {ListJobsQuery & CallOptions} [o] @returns {Promise<{items: Job[]} & Record<string, any>>} */
  listJobs(o = {}) {
    const { signal, timeoutMs, requestId, ...query } = o;
    return this.request('GET', '/v1/jobs', { signal, timeoutMs, requestId, query });
  }

  /** @param {number} id @param {CallOptions} [o] @returns {Promise<Job>} */
  getJob(id, o) {
    return this.request('GET', `/v1/jobs/${seg(id)}`, o);
  }

  /** @param {number} id @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  cancelJob(id, o) {
    return this.request('POST', `/v1/jobs/${seg(id)}/cancel`, o);
  }

  /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  pauseIngest(o) {
    return this.request('POST', '/v1/ingest/pause', o);
  }

  /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  resumeIngest(o) {
    return this.request('POST', '/v1/ingest/resume', o);
  }

  // --- folders and coverage -------------------------------------------------------------

  /** @param {FolderSpec} spec @param {CallOptions} [o] @returns {Promise<Folder>} */
  addFolder(spec, o) {
    return this.request('POST', '/v1/folders', { ...o, json: spec });
  }

  /** @param {CallOptions} [o] @returns {Promise<{items: Folder[]}>} */
  listFolders(o) {
    return this.request('GET', '/v1/folders', o);
  }

  /**
   * Stop watching a folder (its documents are removed unless `keepDocuments`).
   * @param {number} id
   * @param {{keepDocuments?: boolean} & CallOptions} [o]
   * @returns {Promise<Record<string, any>>}
   */
  removeFolder(id, o = {}) {
    const { keepDocuments, ...call } = o;
    const query = keepDocuments ? { keep_documents: true } : undefined;
    return this.request('DELETE', `/v1/folders/${seg(id)}`, { ...call, query });
  }

  /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  coverage(o) {
    return this.request('GET', '/v1/coverage', o);
  }

  // --- search ---------------------------------------------------------------------------

  /** @param {SearchRequest} req @param {CallOptions} [o] @returns {Promise<SearchResult>} */
  search(req, o) {
    return this.request('POST', '/v1/search', { ...o, json: req });
  }

  /** RAG context within a token budget. @param {ContextRequest} req @param {CallOptions} [o] @returns {Promise<ContextResult>} */
  context(req, o) {
    return this.request('POST', '/v1/context', { ...o, json: req });
  }

  // --- sync -----------------------------------------------------------------------------

  /** @param {CallOptions} [o] @returns {Promise<SyncStatus>} */
  syncStatus(o) {
    return this.request('GET', '/v1/sync/status', o);
  }

  /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  syncRun(o) {
    return this.request('POST', '/v1/sync/run', o);
  }

  /** Hand the app's Supabase session to the sidecar. @param {SyncSession} session @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  syncSignIn(session, o) {
    return this.request('POST', '/v1/sync/session', { ...o, json: session });
  }

  /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
  syncSignOut(o) {
    return this.request('DELETE', '/v1/sync/session', o);
  }
}

/** Encode one path segment. @param {string|number} value */
function seg(value) {
  const s = String(value);
  if (s === '' || s === '.' || s === '..') throw new TypeError(`invalid id ${JSON.stringify(s)}`);
  return encodeURIComponent(s);
}

module.exports = { SidecarApi, UPLOAD_TIMEOUT_MS };
