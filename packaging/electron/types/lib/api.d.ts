export type RequestOptions = import("./http").RequestOptions;
export type CallOptions = Pick<RequestOptions, "signal" | "timeoutMs" | "requestId">;
export type ComponentState = "starting" | "ready" | "degraded" | "failed" | "stopped" | "disabled";
export type Status = {
    version: string;
    pid: number;
    port: number;
    data_dir: string;
    schema_version: number;
    counts: Record<string, number>;
    components: Record<string, {
        state: ComponentState;
        error: {
            code: string;
            message: string;
        } | null;
    }>;
};
/**
 * A document (loose: see the OpenAPI schema for every field).
 */
export type Document = {
    id: string;
    title?: string;
    path?: string | null;
    scope?: string;
    tags?: string[];
    status?: string;
    mime?: string;
    size?: number;
    sha256?: string;
} & Record<string, any>;
export type AddDocumentResult = {
    document: Document;
    job_id: number;
};
export type DocumentPage = {
    items: Document[];
    next_cursor: string | null;
};
export type ListDocumentsQuery = {
    scope?: string | undefined;
    tag?: string | undefined;
    status?: string | undefined;
    folder_id?: number | undefined;
    source?: string | undefined;
    limit?: number | undefined;
    /**
     * `next_cursor` of the previous page
     */
    cursor?: string | undefined;
};
/**
 * A job (loose).
 */
export type Job = {
    id: number;
    kind?: string;
    state: "queued" | "running" | "done" | "failed" | "cancelled";
    document_id?: string | null;
    progress?: Record<string, any>;
    error?: any;
} & Record<string, any>;
export type ListJobsQuery = {
    state?: string;
    kind?: string;
    document_id?: string;
    limit?: number;
    before?: number;
};
export type FolderSpec = {
    path: string;
    scope?: string | undefined;
    /**
     * default true
     */
    recursive?: boolean | undefined;
    /**
     * glob patterns
     */
    include?: string[] | undefined;
    exclude?: string[] | undefined;
};
/**
 * A watched folder (loose).
 */
export type Folder = {
    id: number;
    path: string;
    scope: string;
    recursive: boolean;
    include: string[];
    exclude: string[];
} & Record<string, any>;
export type SearchFilters = {
    scopes?: string[] | undefined;
    document_ids?: string[] | undefined;
    tags?: string[] | undefined;
    mime_types?: string[] | undefined;
    path_prefix?: string | undefined;
    modified_after?: string | number | undefined;
    modified_before?: string | number | undefined;
};
export type SearchRequest = {
    query: string;
    mode?: "hybrid" | "semantic" | "keyword" | undefined;
    k?: number | undefined;
    filters?: SearchFilters | undefined;
    cursor?: string | undefined;
};
/**
 * A search hit (loose).
 */
export type SearchHit = {
    chunk_id?: string | number;
    document_id: string;
    text?: string;
    snippet?: any;
    score?: number;
    scores?: Record<string, number>;
    page?: number | null;
} & Record<string, any>;
export type SearchResult = {
    hits: SearchHit[];
} & Record<string, any>;
export type ContextRequest = {
    question: string;
    token_budget?: number | undefined;
    filters?: SearchFilters | undefined;
};
/**
 * loose: passages with citations
 */
export type ContextResult = Record<string, any>;
/**
 * loose
 */
export type SyncStatus = Record<string, any>;
export type SyncSession = {
    supabase_url: string;
    anon_key: string;
    access_token: string;
    refresh_token: string;
};
export type UploadOptions = {
    /**
     * the name the sidecar records (default: the path's basename)
     */
    filename?: string | undefined;
    /**
     * default `application/octet-stream`
     */
    contentType?: string | undefined;
    scope?: string | undefined;
    tags?: string[] | undefined;
};
export class SidecarApi extends EventEmitter<[never]> {
    constructor();
    /**
     * Send a request (implemented by subclasses).
     * @param {string} method
     * @param {string} path
     * @param {RequestOptions} [options]
     * @returns {Promise<any>}
     */
    request(method: string, path: string, options?: RequestOptions): Promise<any>;
    /** @param {CallOptions} [o] @returns {Promise<{status: 'ok'}>} */
    health(o?: CallOptions): Promise<{
        status: "ok";
    }>;
    /** @param {CallOptions} [o] @returns {Promise<Status>} */
    status(o?: CallOptions): Promise<Status>;
    /** Prometheus text format. @param {CallOptions} [o] @returns {Promise<string>} */
    metrics(o?: CallOptions): Promise<string>;
    /** The OpenAPI schema. @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    openapi(o?: CallOptions): Promise<Record<string, any>>;
    /**
     * Index a local file in place (`POST /v1/documents {path}`); answers 202 before indexing.
     * @param {string} filePath
     * @param {{scope?: string, tags?: string[]} & CallOptions} [o]
     * @returns {Promise<AddDocumentResult>}
     */
    addDocumentPath(filePath: string, o?: {
        scope?: string;
        tags?: string[];
    } & CallOptions): Promise<AddDocumentResult>;
    /**
     * Upload bytes as a document (multipart `file`, `scope`, `tags`); the sidecar keeps a copy.
     * @param {Blob|Uint8Array|ArrayBuffer|string} data   string = file contents (UTF-8)
     * @param {UploadOptions & CallOptions} [o]
     * @returns {Promise<AddDocumentResult>}
     */
    uploadDocument(data: Blob | Uint8Array | ArrayBuffer | string, o?: UploadOptions & CallOptions): Promise<AddDocumentResult>;
    /**
     * Upload a file from disk, streamed (not read into memory first).
     * @param {string} filePath
     * @param {UploadOptions & CallOptions} [o]
     * @returns {Promise<AddDocumentResult>}
     */
    uploadFile(filePath: string, o?: UploadOptions & CallOptions): Promise<AddDocumentResult>;
    /** @param {ListDocumentsQuery & CallOptions} [o] @returns {Promise<DocumentPage>} */
    listDocuments(o?: ListDocumentsQuery & CallOptions): Promise<DocumentPage>;
    /** @param {string} id @param {CallOptions} [o] @returns {Promise<Document>} */
    getDocument(id: string, o?: CallOptions): Promise<Document>;
    /** The original bytes. @param {string} id @param {CallOptions} [o] @returns {Promise<Buffer>} */
    getDocumentContent(id: string, o?: CallOptions): Promise<Buffer>;
    /**
     * @param {string} id
     * @param {{offset?: number, limit?: number} & CallOptions} [o]
     * @returns {Promise<Record<string, any>>}
     */
    getDocumentChunks(id: string, o?: {
        offset?: number;
        limit?: number;
    } & CallOptions): Promise<Record<string, any>>;
    /** @param {string} id @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    deleteDocument(id: string, o?: CallOptions): Promise<Record<string, any>>;
    /** @param {ListJobsQuery & CallOptions} [o] @returns {Promise<{items: Job[]} & Record<string, any>>} */
    listJobs(o?: ListJobsQuery & CallOptions): Promise<{
        items: Job[];
    } & Record<string, any>>;
    /** @param {number} id @param {CallOptions} [o] @returns {Promise<Job>} */
    getJob(id: number, o?: CallOptions): Promise<Job>;
    /** @param {number} id @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    cancelJob(id: number, o?: CallOptions): Promise<Record<string, any>>;
    /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    pauseIngest(o?: CallOptions): Promise<Record<string, any>>;
    /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    resumeIngest(o?: CallOptions): Promise<Record<string, any>>;
    /** @param {FolderSpec} spec @param {CallOptions} [o] @returns {Promise<Folder>} */
    addFolder(spec: FolderSpec, o?: CallOptions): Promise<Folder>;
    /** @param {CallOptions} [o] @returns {Promise<{items: Folder[]}>} */
    listFolders(o?: CallOptions): Promise<{
        items: Folder[];
    }>;
    /**
     * Stop watching a folder (its documents are removed unless `keepDocuments`).
     * @param {number} id
     * @param {{keepDocuments?: boolean} & CallOptions} [o]
     * @returns {Promise<Record<string, any>>}
     */
    removeFolder(id: number, o?: {
        keepDocuments?: boolean;
    } & CallOptions): Promise<Record<string, any>>;
    /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    coverage(o?: CallOptions): Promise<Record<string, any>>;
    /** @param {SearchRequest} req @param {CallOptions} [o] @returns {Promise<SearchResult>} */
    search(req: SearchRequest, o?: CallOptions): Promise<SearchResult>;
    /** RAG context within a token budget. @param {ContextRequest} req @param {CallOptions} [o] @returns {Promise<ContextResult>} */
    context(req: ContextRequest, o?: CallOptions): Promise<ContextResult>;
    /** @param {CallOptions} [o] @returns {Promise<SyncStatus>} */
    syncStatus(o?: CallOptions): Promise<SyncStatus>;
    /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    syncRun(o?: CallOptions): Promise<Record<string, any>>;
    /** Hand the app's Supabase session to the sidecar. @param {SyncSession} session @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    syncSignIn(session: SyncSession, o?: CallOptions): Promise<Record<string, any>>;
    /** @param {CallOptions} [o] @returns {Promise<Record<string, any>>} */
    syncSignOut(o?: CallOptions): Promise<Record<string, any>>;
}
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
export const UPLOAD_TIMEOUT_MS: number;
import { EventEmitter } from "events";
