"""docsidecar: local-first document search sidecar for a desktop app."""

__version__ = "0.1.0"
