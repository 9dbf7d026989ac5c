-- docsidecar sync, migration 0002: the RPC functions (POST /rest/v1/rpc/<name>).
--
--   sync_push(p_changes jsonb) -> jsonb              apply a batch of changes atomically
--   sync_pull(p_cursor text, p_limit int) -> jsonb   document versions committed after a cursor
--   sync_pull_chunks(p_documents jsonb, p_cursor text, p_limit int) -> jsonb
--                                                    chunks of given document versions
--   match_chunks(query_embedding, match_count, filter_scope, min_similarity) -> table
--                                                    cloud semantic search
--
-- All are SECURITY INVOKER: they run as the calling user ("authenticated"), so row-level security
-- applies to every statement inside them exactly as it does to direct table access.

-- ---------------------------------------------------------------------------------------------
-- Push protocol (one change = one JSON object; the batch is one transaction):
--
--   {"change_id": uuid, "kind": "chunks", "document_id": uuid, "doc_hlc": int, "doc_device": text,
--    "chunks": [{"id", "ordinal", "text", "char_start", "char_end", "page", "heading_path",
--                "model_id", "embedding": [384 floats]}, ...]}
--       stores the chunks of document version (doc_hlc, doc_device). Push them BEFORE the document
--       change that makes the version current (same batch or earlier), so a version is never
--       visible without its chunks. A version that already lost to the current one -> "conflict".
--
--   {"change_id": uuid, "kind": "document", "base_hlc": int|null, "base_device": text|null,
--    "document": {"id", "scope", "title", "filename", "mime", "size", "sha256", "storage_key",
--                 "hlc", "origin_device", "deleted"}}
--       base_* name the server version the client's edit started from (null for a new document).
--       Outcomes, by comparing with the server's current version C:
--         no row                       -> insert, "accepted"
--         C == incoming version        -> nothing to do, "accepted" (a replay under a new change id)
--         C == base (a fast-forward)   -> must be newer by LWW, else "rejected" (22023); "accepted"
--         C != base (concurrent edit)  -> last-writer-wins by (hlc, origin_device COLLATE "C"):
--             incoming wins  -> applied, "accepted" with "replaced" = the displaced version C; the
--                               pushing client turns C into a conflicted copy (nothing is lost)
--             incoming loses -> not applied, "conflict" with "current" = C; the pushing client turns
--                               its own version into a conflicted copy
--       When a version becomes current, chunks of all other versions of the document are removed.
--       A non-deleted version with a storage_key requires the object to exist in bucket
--       "documents" (files are uploaded before their row).
--
-- Each item's result: {"change_id", "kind", "id", "status": "accepted"|"conflict"|"rejected",
--   "current": row|null, "replaced": row|null, "count": int|null, "error": {"code","message"}|null}.
-- Idempotency: the first execution of a change id stores its result in sync_push_results; any
-- later execution of that change id (a retry after a lost response, a duplicate in a batch, a
-- concurrent retry that waited for the first on the primary key) returns the stored result and
-- changes nothing. "rejected" means a deterministic data error (SQLSTATE classes 22, 23, 42501);
-- it is stored too, so a corrected change must use a new change id. Transient errors (timeouts,
-- serialization failures, lost connections) abort the whole batch instead: nothing is stored and
-- the client retries the same batch.
-- ---------------------------------------------------------------------------------------------

create function docsidecar_sync.version_gt(
  a_hlc bigint, a_device text, b_hlc bigint, b_device text
) returns boolean
language sql immutable
set search_path = ''
as $$
  -- Last-writer-wins order: larger hlc wins; equal hlc -> larger device id (bytewise) wins.
  select (a_hlc, a_device collate "C") > (b_hlc, b_device collate "C")
$$;

create function docsidecar_sync.document_json(d public.documents) returns jsonb
language sql stable
set search_path = ''
as $$
  select to_jsonb(d) - 'change_xid'
$$;

create function docsidecar_sync.push_chunks(p_item jsonb) returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_doc uuid := (p_item ->> 'document_id')::uuid;
  v_hlc bigint := (p_item ->> 'doc_hlc')::bigint;
  v_device text := p_item ->> 'doc_device';
  v_chunks jsonb := p_item -> 'chunks';
  v_cur public.documents;
  v_expected integer;
  v_written integer;
begin
  if v_doc is null or v_hlc is null or v_device is null then
    raise exception using errcode = '22023',
      message = 'a chunks change needs document_id, doc_hlc and doc_device';
  end if;
  if jsonb_typeof(v_chunks) is distinct from 'array' then
    raise exception using errcode = '22023', message = 'chunks must be a JSON array';
  end if;
  v_expected := jsonb_array_length(v_chunks);

  -- Serialise with document pushes of the same document (row lock; no row -> nothing to lock).
  select * into v_cur from public.documents where id = v_doc for update;
  if found and (v_cur.hlc, v_cur.origin_device) is distinct from (v_hlc, v_device)
     and docsidecar_sync.version_gt(v_cur.hlc, v_cur.origin_device, v_hlc, v_device) then
    return jsonb_build_object('status', 'conflict', 'id', v_doc,
                              'current', docsidecar_sync.document_json(v_cur));
  end if;

  insert into public.chunks as c (
    id, document_id, doc_hlc, doc_device, ordinal, text, char_start, char_end, page,
    heading_path, model_id, embedding)
  select r.id, v_doc, v_hlc, v_device, r.ordinal, r.text, r.char_start, r.char_end, r.page,
         coalesce(r.heading_path, '{}'), r.model_id, r.embedding
  from jsonb_to_recordset(v_chunks) as r(
    id uuid, ordinal integer, text text, char_start integer, char_end integer, page integer,
    heading_path text[], model_id text, embedding extensions.vector(384))
  on conflict (id) do update
    set ordinal = excluded.ordinal, text = excluded.text, char_start = excluded.char_start,
        char_end = excluded.char_end, page = excluded.page, heading_path = excluded.heading_path,
        model_id = excluded.model_id, embedding = excluded.embedding
    where c.document_id = excluded.document_id and c.doc_hlc = excluded.doc_hlc
      and c.doc_device = excluded.doc_device;
  get diagnostics v_written = row_count;
  if v_written <> v_expected then
    raise exception using errcode = '23505',
      message = 'a chunk id is already used by another document version',
      detail = format('%s of %s chunks written', v_written, v_expected);
  end if;
  return jsonb_build_object('status', 'accepted', 'id', v_doc, 'count', v_written);
end
$$;

create function docsidecar_sync.push_document(p_item jsonb) returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_doc jsonb := p_item -> 'document';
  v_id uuid := (v_doc ->> 'id')::uuid;
  v_hlc bigint := (v_doc ->> 'hlc')::bigint;
  v_device text := v_doc ->> 'origin_device';
  v_base_hlc bigint := (p_item ->> 'base_hlc')::bigint;
  v_base_device text := p_item ->> 'base_device';
  v_new public.documents;
  v_cur public.documents;
  v_concurrent boolean;
begin
  if jsonb_typeof(v_doc) is distinct from 'object' or v_id is null or v_hlc is null
     or v_device is null then
    raise exception using errcode = '22023',
      message = 'a document change needs document.id, document.hlc and document.origin_device';
  end if;
  -- Parse the client's fields into a row (unknown keys are ignored, types are checked here).
  v_new := jsonb_populate_record(null::public.documents,
    v_doc - 'user_id' - 'change_xid' - 'created_at' - 'updated_at');

  if not coalesce(v_new.deleted, false) and v_new.storage_key is not null and not exists (
       select 1 from storage.objects o
       where o.bucket_id = 'documents' and o.name = v_new.storage_key) then
    raise exception using errcode = '23503',
      message = 'the document''s file is not in storage; upload it before pushing the row',
      detail = format('Key (storage_key)=(%s) is not present in bucket "documents".',
                      v_new.storage_key);
  end if;

  select * into v_cur from public.documents where id = v_id for update;
  if not found then
    insert into public.documents (
      id, scope, title, filename, mime, size, sha256, storage_key, hlc, origin_device, deleted)
    values (
      v_id, coalesce(v_new.scope, 'default'), coalesce(v_new.title, ''),
      coalesce(v_new.filename, ''), coalesce(v_new.mime, 'application/octet-stream'),
      coalesce(v_new.size, 0), v_new.sha256, v_new.storage_key, v_hlc, v_device,
      coalesce(v_new.deleted, false))
    returning * into v_cur;
    delete from public.chunks c
      where c.document_id = v_id and (c.doc_hlc, c.doc_device) is distinct from (v_hlc, v_device);
    return jsonb_build_object('status', 'accepted', 'id', v_id,
                              'current', docsidecar_sync.document_json(v_cur));
  end if;

  if (v_cur.hlc, v_cur.origin_device) = (v_hlc, v_device) then
    return jsonb_build_object('status', 'accepted', 'id', v_id,
                              'current', docsidecar_sync.document_json(v_cur));
  end if;

  v_concurrent := (v_cur.hlc, v_cur.origin_device) is distinct from (v_base_hlc, v_base_device);
  if not docsidecar_sync.version_gt(v_hlc, v_device, v_cur.hlc, v_cur.origin_device) then
    if not v_concurrent then
      raise exception using errcode = '22023',
        message = 'a change must have a larger hlc than the version it is based on',
        detail = format('base (%s, %s), change (%s, %s)', v_base_hlc, v_base_device, v_hlc,
                        v_device);
    end if;
    -- Lost the race: drop the chunks pushed for the losing version, report the winner.
    delete from public.chunks c
      where c.document_id = v_id and c.doc_hlc = v_hlc and c.doc_device = v_device;
    return jsonb_build_object('status', 'conflict', 'id', v_id,
                              'current', docsidecar_sync.document_json(v_cur));
  end if;

  update public.documents d
     set scope = coalesce(v_new.scope, 'default'), title = coalesce(v_new.title, ''),
         filename = coalesce(v_new.filename, ''),
         mime = coalesce(v_new.mime, 'application/octet-stream'),
         size = coalesce(v_new.size, 0), sha256 = v_new.sha256, storage_key = v_new.storage_key,
         hlc = v_hlc, origin_device = v_device, deleted = coalesce(v_new.deleted, false)
   where d.id = v_id
  returning * into v_new;
  delete from public.chunks c
    where c.document_id = v_id and (c.doc_hlc, c.doc_device) is distinct from (v_hlc, v_device);
  return jsonb_build_object(
    'status', 'accepted', 'id', v_id, 'current', docsidecar_sync.document_json(v_new),
    'replaced', case when v_concurrent then docsidecar_sync.document_json(v_cur) end);
end
$$;

create function public.sync_push(p_changes jsonb) returns jsonb
language plpgsql volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_item jsonb;
  v_change_id uuid;
  v_kind text;
  v_result jsonb;
  v_results jsonb := '[]'::jsonb;
  v_state text;
  v_message text;
begin
  if v_uid is null then
    raise exception using errcode = '42501', message = 'sync_push needs a signed-in user';
  end if;
  if jsonb_typeof(p_changes) is distinct from 'array' then
    raise exception using errcode = '22023', message = 'p_changes must be a JSON array';
  end if;
  if jsonb_array_length(p_changes) > 1000 then
    raise exception using errcode = '22023', message = 'at most 1000 changes per push';
  end if;

  for v_item in select value from jsonb_array_elements(p_changes) loop
    v_change_id := null;
    if jsonb_typeof(v_item) = 'object'
       and (v_item ->> 'change_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    then
      v_change_id := (v_item ->> 'change_id')::uuid;
    end if;
    if v_change_id is null then
      raise exception using errcode = '22023',
        message = 'every change must be an object with a "change_id" uuid';
    end if;
    v_kind := v_item ->> 'kind';

    -- Claim the change id. A concurrent transaction holding the same id makes this wait; once it
    -- commits we see its row and return its result instead of applying the change twice.
    insert into public.sync_push_results (user_id, change_id)
      values (v_uid, v_change_id) on conflict do nothing;
    if not found then
      select r.result into v_result from public.sync_push_results r
        where r.user_id = v_uid and r.change_id = v_change_id;
      v_results := v_results || jsonb_build_array(v_result);
      continue;
    end if;

    begin
      if v_kind = 'document' then
        v_result := docsidecar_sync.push_document(v_item);
      elsif v_kind = 'chunks' then
        v_result := docsidecar_sync.push_chunks(v_item);
      else
        raise exception using errcode = '22023',
          message = format('unknown change kind %s (expected "document" or "chunks")', v_kind);
      end if;
    exception
      when data_exception or integrity_constraint_violation or insufficient_privilege then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
        v_result := jsonb_build_object(
          'status', 'rejected',
          'id', case when v_kind = 'chunks' then v_item -> 'document_id'
                     else v_item -> 'document' -> 'id' end,
          'error', jsonb_build_object('code', v_state, 'message', v_message));
    end;

    v_result := jsonb_build_object('change_id', v_change_id, 'kind', v_kind,
                                   'current', null, 'replaced', null, 'count', null,
                                   'error', null) || v_result;
    update public.sync_push_results r set result = v_result
      where r.user_id = v_uid and r.change_id = v_change_id;
    v_results := v_results || jsonb_build_array(v_result);
  end loop;
  return jsonb_build_object('results', v_results);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Pull cursor: why it never skips a row that commits out of order.
--
-- Each document write stamps the row with change_xid = pg_current_xact_id(), the 64-bit id of the
-- writing transaction (assigned when the transaction first writes). The cursor is the position
-- (change_xid, id) of the last row delivered, and rows are delivered in (change_xid, id) order.
--
-- Transaction ids are handed out in increasing order but transactions commit in any order: T1 may
-- get xid 100, T2 xid 101, and T2 commit first. A cursor that simply took "the largest xid seen so
-- far" would jump to 101 and never deliver T1's row (xid 100) once T1 commits.
--
-- So a pull delivers only rows whose change_xid is below the snapshot's xmin,
-- pg_snapshot_xmin(pg_current_snapshot()): by definition every transaction with an id below xmin
-- has already finished (committed or rolled back), and every transaction that is still running,
-- or starts later, has an id >= xmin. Hence
--   (1) every row below the horizon that will ever exist is already committed and visible to this
--       snapshot (the snapshot sees all transactions that finished before it was taken), and
--   (2) no row can later appear with a change_xid below the horizon.
-- Delivering in (change_xid, id) order up to the horizon therefore leaves nothing behind the
-- cursor, ever. In the example, while T1 runs the horizon is 100, so neither T1's nor T2's row is
-- delivered; after T1 commits both are, in order. The price: a long-running writing transaction
-- anywhere in the database holds back (never loses) deliveries until it ends. An update moves a
-- row to its new transaction's position, so a changed row is delivered again; a reader sees each
-- row's latest committed version. xid8 is epoch-extended, so there is no wraparound.
-- The function is STABLE: the horizon and the rows come from one snapshot.
-- ---------------------------------------------------------------------------------------------

create function docsidecar_sync.parse_cursor(p_cursor text, out xid xid8, out id uuid)
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_cursor is null or p_cursor = '' then
    xid := '0'::xid8;
    id := '00000000-0000-0000-0000-000000000000'::uuid;
    return;
  end if;
  if p_cursor !~* '^[0-9]{1,20}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    raise exception using errcode = '22023', message = 'invalid pull cursor',
      hint = 'pass null to start, or the next_cursor of the previous pull';
  end if;
  xid := split_part(p_cursor, ':', 1)::xid8;
  id := split_part(p_cursor, ':', 2)::uuid;
end
$$;

create function public.sync_pull(p_cursor text default null, p_limit integer default 500)
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_after record;
  v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
  v_rows jsonb;
  v_count integer;
  v_last text;
begin
  if v_uid is null then
    raise exception using errcode = '42501', message = 'sync_pull needs a signed-in user';
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception using errcode = '22023', message = 'p_limit must be between 1 and 1000';
  end if;
  select c.xid, c.id into v_after from docsidecar_sync.parse_cursor(p_cursor) c;

  with page as (
    select d.*
      from public.documents d
     where d.user_id = v_uid
       and d.change_xid < v_horizon
       and (d.change_xid, d.id) > (v_after.xid, v_after.id)
     order by d.change_xid, d.id
     limit p_limit + 1
  ), numbered as (
    select p.*, row_number() over (order by p.change_xid, p.id) as n from page p
  )
  select coalesce(jsonb_agg(to_jsonb(x) - 'change_xid' - 'n' order by x.n)
                    filter (where x.n <= p_limit), '[]'::jsonb),
         count(*),
         (array_agg(x.change_xid::text || ':' || x.id::text order by x.n desc)
            filter (where x.n <= p_limit))[1]
    into v_rows, v_count, v_last
    from numbered x;

  return jsonb_build_object(
    'changes', v_rows,
    'next_cursor', coalesce(v_last, nullif(p_cursor, '')),
    'has_more', v_count > p_limit);
end
$$;

-- Chunks of the given document versions, in (document_id, ordinal) order, paged by a cursor
-- "<document_id>:<ordinal>". Versions that are no longer stored (superseded) simply yield nothing.
create function public.sync_pull_chunks(
  p_documents jsonb, p_cursor text default null, p_limit integer default 500
) returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_after_doc uuid := '00000000-0000-0000-0000-000000000000';
  v_after_ord integer := -1;
  v_rows jsonb;
  v_count integer;
  v_last jsonb;
begin
  if auth.uid() is null then
    raise exception using errcode = '42501', message = 'sync_pull_chunks needs a signed-in user';
  end if;
  if jsonb_typeof(p_documents) is distinct from 'array' or jsonb_array_length(p_documents) > 1000
  then
    raise exception using errcode = '22023',
      message = 'p_documents must be a JSON array of at most 1000 {id, hlc, origin_device}';
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception using errcode = '22023', message = 'p_limit must be between 1 and 1000';
  end if;
  if p_cursor is not null and p_cursor <> '' then
    if p_cursor !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9]{1,9}$' then
      raise exception using errcode = '22023', message = 'invalid chunk cursor';
    end if;
    v_after_doc := split_part(p_cursor, ':', 1)::uuid;
    v_after_ord := split_part(p_cursor, ':', 2)::integer;
  end if;

  with wanted as (
    select w.id, w.hlc, w.origin_device
      from jsonb_to_recordset(p_documents) as w(id uuid, hlc bigint, origin_device text)
  ), page as (
    select c.id, c.document_id, c.doc_hlc, c.doc_device, c.ordinal, c.text, c.char_start,
           c.char_end, c.page, c.heading_path, c.model_id, c.embedding::real[] as embedding
      from public.chunks c
      join wanted w
        on c.document_id = w.id and c.doc_hlc = w.hlc and c.doc_device = w.origin_device
     where (c.document_id, c.ordinal) > (v_after_doc, v_after_ord)
     order by c.document_id, c.ordinal
     limit p_limit + 1
  ), numbered as (
    select p.*, row_number() over (order by p.document_id, p.ordinal) as n from page p
  )
  select coalesce(jsonb_agg(to_jsonb(x) - 'n' order by x.n) filter (where x.n <= p_limit),
                  '[]'::jsonb),
         count(*)
    into v_rows, v_count
    from numbered x;

  if v_count = 0 then
    return jsonb_build_object('chunks', v_rows, 'next_cursor', p_cursor, 'has_more', false);
  end if;
  v_last := v_rows -> (jsonb_array_length(v_rows) - 1);
  return jsonb_build_object(
    'chunks', v_rows,
    'next_cursor', (v_last ->> 'document_id') || ':' || (v_last ->> 'ordinal'),
    'has_more', v_count > p_limit);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Cloud semantic search over the caller's current (non-deleted) document versions. SECURITY
-- INVOKER, so RLS restricts it to the caller's rows. Ordered by the distance operator so the HNSW
-- index can serve it; iterative scans (pgvector >= 0.8) keep filtered queries from returning
-- fewer rows than asked for.
-- ---------------------------------------------------------------------------------------------
create function public.match_chunks(
  query_embedding extensions.vector(384),
  match_count integer default 10,
  filter_scope text default null,
  min_similarity double precision default null
) returns table (
  chunk_id uuid,
  document_id uuid,
  ordinal integer,
  text text,
  page integer,
  heading_path text[],
  similarity double precision
)
language sql stable
security invoker
set search_path = ''
set hnsw.iterative_scan = 'strict_order'
as $$
  select c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path,
         1 - (c.embedding operator(extensions.<=>) query_embedding)
    from public.chunks c
    join public.documents d
      on d.id = c.document_id and d.hlc = c.doc_hlc and d.origin_device = c.doc_device
   where c.embedding is not null
     and not d.deleted
     and (filter_scope is null or d.scope = filter_scope)
     and (min_similarity is null
          or 1 - (c.embedding operator(extensions.<=>) query_embedding) >= min_similarity)
   order by c.embedding operator(extensions.<=>) query_embedding
   limit least(greatest(coalesce(match_count, 10), 0), 200)
$$;

-- Only signed-in users may call these; helpers stay unreachable over the API.
revoke all on function public.sync_push(jsonb) from public, anon;
revoke all on function public.sync_pull(text, integer) from public, anon;
revoke all on function public.sync_pull_chunks(jsonb, text, integer) from public, anon;
revoke all on function public.match_chunks(extensions.vector, integer, text, double precision)
  from public, anon;
grant execute on function public.sync_push(jsonb) to authenticated, service_role;
grant execute on function public.sync_pull(text, integer) to authenticated, service_role;
grant execute on function public.sync_pull_chunks(jsonb, text, integer)
  to authenticated, service_role;
grant execute on function public.match_chunks(extensions.vector, integer, text, double precision)
  to authenticated, service_role;
grant execute on all functions in schema docsidecar_sync to authenticated, service_role;
