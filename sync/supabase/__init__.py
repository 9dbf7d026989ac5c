"""httpx clients for the parts of Supabase sync uses: Auth (GoTrue), PostgREST RPC, Storage (+ TUS).

Every call goes through :class:`sync.supabase.http.SupabaseHttp`, whose error classification and
retries live in one module, :mod:`sync.supabase.retry`.
"""
