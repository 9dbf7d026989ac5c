-- 0002: local state of cloud sync (sync/). Scalar state (device id, clock, pull cursor, the
-- account it belongs to, last success/error) lives in kv under 'sync.*'.

-- Per-document sync bookkeeping. No foreign key to documents on purpose: a deleted document
-- keeps its row until its tombstone is pushed.
--   base_*     the server version the local state derives from (last pushed or applied);
--              NULL when the document has never been on the server as far as we know.
--   prep_*     the version assigned to the local state as of outbox row prep_seq, persisted
--              before the first push attempt so a retry re-sends the same version (and so the
--              same change ids) after a lost response.
--   storage_key the object known to be in Storage for this document (content-addressed).
CREATE TABLE sync_documents (
    document_id  TEXT PRIMARY KEY,
    base_hlc     INTEGER,
    base_device  TEXT,
    base_sha256  TEXT,
    base_deleted INTEGER NOT NULL DEFAULT 0,
    storage_key  TEXT,
    prep_seq     INTEGER,
    prep_hlc     INTEGER,
    prep_device  TEXT,
    updated_at   REAL NOT NULL
) WITHOUT ROWID;

-- Changes the server rejected as invalid (SQLSTATE 22xxx/23xxx/42501, Storage 4xx with a real
-- code). Never dropped, never retried automatically: listed by GET /v1/sync/dead-letters and
-- re-queued by POST /v1/sync/dead-letters/{id}/retry. A document with a dead letter is not
-- overwritten by pulled versions (its local change would be lost).
CREATE TABLE sync_dead_letters (
    id          INTEGER PRIMARY KEY,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    op          TEXT NOT NULL,
    stage       TEXT NOT NULL CHECK (stage IN ('upload', 'push')),
    hlc         INTEGER,
    device      TEXT,
    outbox_seq  INTEGER,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL
);
CREATE INDEX sync_dead_letters_entity ON sync_dead_letters(entity, entity_id);

-- Concurrent edits of one document on two devices: the losing version was kept as a new
-- document (copy_document_id). kind: 'local_lost' (the server kept the other device's version;
-- ours became the copy) or 'remote_replaced' (ours won; the displaced version became the copy).
CREATE TABLE sync_conflicts (
    id               INTEGER PRIMARY KEY,
    document_id      TEXT NOT NULL,
    copy_document_id TEXT,
    kind             TEXT NOT NULL CHECK (kind IN ('local_lost', 'remote_replaced')),
    winner_hlc       INTEGER NOT NULL,
    winner_device    TEXT NOT NULL,
    loser_hlc        INTEGER,
    loser_device     TEXT,
    detail           TEXT NOT NULL DEFAULT '{}',
    created_at       REAL NOT NULL
);
CREATE INDEX sync_conflicts_document ON sync_conflicts(document_id);
