"""Ingest: turn files into searchable chunks.

This package holds the pure-ish halves: :mod:`backend.ingest.extract` (file → text with
structure), :mod:`backend.ingest.chunking` (text → token-bounded chunks with offsets),
:mod:`backend.ingest.sniff` (type detection), :mod:`backend.ingest.limits` (safety bounds) and
:mod:`backend.ingest.names` (file-name sanitisation, path confinement). Importing it has no side
effects; nothing here starts a thread or a process until asked to.
"""
