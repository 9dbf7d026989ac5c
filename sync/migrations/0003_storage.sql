-- docsidecar sync, migration 0003: the private Storage bucket for original files.
--
-- Object keys are ASCII and content-addressed: "<user_id>/<document_id>/<sha256>" (Supabase
-- Storage rejects non-ASCII keys with InvalidKey; the original file name lives in
-- public.documents.filename). A user reads and writes only objects under their own user id.
-- An upsert (x-upsert: true) needs the select and update policies as well as insert.

insert into storage.buckets (id, name, public)
values ('documents', 'documents', false)
on conflict (id) do nothing;

create policy "docsidecar documents: select own" on storage.objects
  for select to authenticated
  using (bucket_id = 'documents' and (storage.foldername(name))[1] = (select auth.uid()::text));

create policy "docsidecar documents: insert own" on storage.objects
  for insert to authenticated
  with check (bucket_id = 'documents'
              and (storage.foldername(name))[1] = (select auth.uid()::text));

create policy "docsidecar documents: update own" on storage.objects
  for update to authenticated
  using (bucket_id = 'documents' and (storage.foldername(name))[1] = (select auth.uid()::text))
  with check (bucket_id = 'documents'
              and (storage.foldername(name))[1] = (select auth.uid()::text));

create policy "docsidecar documents: delete own" on storage.objects
  for delete to authenticated
  using (bucket_id = 'documents' and (storage.foldername(name))[1] = (select auth.uid()::text));
