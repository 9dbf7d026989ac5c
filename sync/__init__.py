"""Cloud sync with Supabase: outbox push, cursor pull, conflict copies (see ARCHITECTURE.md).

Nothing here runs at import. ``sync.service.SyncService`` is the component the composition root
starts; it stays disabled, and never opens a network connection, until a session is configured.
"""
