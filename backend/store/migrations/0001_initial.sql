-- 0001: initial schema. Times are unix seconds (REAL, UTC). Ids of documents are uuid4 text so
-- the same id can live in the cloud copy; chunk ids are integers shared with the FTS5 and
-- vec0 rowids.

-- Key/value state: active model id, index generation, sync cursors, ...
CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;

-- Watched folders.
CREATE TABLE folders (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,
    scope         TEXT NOT NULL DEFAULT 'default',
    recursive     INTEGER NOT NULL DEFAULT 1,
    include_globs TEXT NOT NULL DEFAULT '[]',   -- JSON array of glob patterns
    exclude_globs TEXT NOT NULL DEFAULT '[]',   -- JSON array of glob patterns
    created_at    REAL NOT NULL,
    scanned_at    REAL
);

-- One row per document. `status` is the durable per-file state the coverage API reports.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    scope          TEXT NOT NULL DEFAULT 'default',
    source         TEXT NOT NULL CHECK (source IN ('upload', 'path', 'folder', 'remote')),
    folder_id      INTEGER REFERENCES folders(id) ON DELETE SET NULL,
    path           TEXT,            -- absolute path of a file indexed in place; NULL for uploads
    filename       TEXT NOT NULL,   -- original file name, for display
    title          TEXT,
    mime           TEXT,
    size           INTEGER,
    sha256         TEXT,            -- of the current content
    mtime_ns       INTEGER,
    blob_key       TEXT,            -- content-addressed copy under <data_dir>/blobs
    status         TEXT NOT NULL DEFAULT 'queued' CHECK (status IN (
                       'queued', 'extracted', 'chunked', 'embedded', 'synced',
                       'failed', 'unsupported', 'no_text')),
    status_reason  TEXT,
    indexed_sha256 TEXT,            -- content whose chunks are in the index
    chunk_count    INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
CREATE UNIQUE INDEX documents_path ON documents(path) WHERE path IS NOT NULL;
CREATE INDEX documents_scope ON documents(scope, id);
CREATE INDEX documents_sha256 ON documents(sha256);
CREATE INDEX documents_folder ON documents(folder_id);
CREATE INDEX documents_updated ON documents(updated_at, id);

CREATE TABLE document_tags (
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (document_id, tag)
) WITHOUT ROWID;
CREATE INDEX document_tags_tag ON document_tags(tag, document_id);

-- Canonical chunk text. FTS5 and vector rows are derived from these rows.
CREATE TABLE chunks (
    id           INTEGER PRIMARY KEY,
    document_id  TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    sha256       TEXT NOT NULL,          -- of text: unchanged chunks keep their vectors
    char_start   INTEGER NOT NULL,
    char_end     INTEGER NOT NULL,
    page         INTEGER,
    heading_path TEXT NOT NULL DEFAULT '',  -- headings joined with ' > '
    token_count  INTEGER NOT NULL,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_sha256 ON chunks(sha256);

-- Keyword index over chunk text (external content: the text is stored once, in chunks).
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, heading_path,
    content = 'chunks', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading_path) VALUES (new.id, new.text, new.heading_path);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path)
        VALUES ('delete', old.id, old.text, old.heading_path);
END;
CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text, heading_path ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path)
        VALUES ('delete', old.id, old.text, old.heading_path);
    INSERT INTO chunks_fts(rowid, text, heading_path) VALUES (new.id, new.text, new.heading_path);
END;

-- Canonical float32 vectors (little-endian, L2-normalised), tagged with the model that made
-- them, so vectors of two models can coexist while a new index is built in the background.
CREATE TABLE embeddings (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (chunk_id, model_id)
) WITHOUT ROWID;
CREATE INDEX embeddings_model ON embeddings(model_id);

-- Registry of derived vector indexes (vec0 tables), one per model.
CREATE TABLE vector_indexes (
    model_id   TEXT PRIMARY KEY,
    table_name TEXT NOT NULL UNIQUE,
    dim        INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('building', 'ready', 'retired')),
    created_at REAL NOT NULL
) WITHOUT ROWID;

-- Coarse vector index for the default model: binary-quantised (sign bit per dimension) copies
-- of the float vectors, plus metadata mirrored from the chunk's document so KNN queries filter
-- inside the scan (backend/store/vectors.py writes them; sqlite-vec metadata cannot be NULL):
-- scope = documents.scope, mime = coalesce(documents.mime, ''), modified_at =
-- coalesce(documents.mtime_ns / 1e9, documents.updated_at).
CREATE VIRTUAL TABLE vec_chunks_1 USING vec0(
    chunk_id    INTEGER PRIMARY KEY,
    embedding   bit[384],
    scope       TEXT,
    mime        TEXT,
    modified_at FLOAT
);
INSERT INTO vector_indexes(model_id, table_name, dim, state, created_at)
    VALUES ('all-MiniLM-L6-v2-int8', 'vec_chunks_1', 384, 'ready', unixepoch('subsec'));

-- Durable work: ingest, re-embed, sync push ... executed by worker threads.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    document_id    TEXT REFERENCES documents(id) ON DELETE SET NULL,
    payload        TEXT NOT NULL DEFAULT '{}',
    state          TEXT NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    priority       INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL DEFAULT 5,
    not_before     REAL NOT NULL DEFAULT 0,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    created_at     REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    updated_at     REAL NOT NULL
);
CREATE INDEX jobs_pending ON jobs(state, priority DESC, id);
CREATE INDEX jobs_document ON jobs(document_id);

-- Local changes waiting to be pushed to the cloud, written in the same transaction as the
-- change itself. `change_id` is the idempotency key the server deduplicates on.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id       TEXT NOT NULL UNIQUE,
    entity          TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    payload         TEXT NOT NULL DEFAULT '{}',
    created_at      REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX outbox_entity ON outbox(entity, entity_id);
