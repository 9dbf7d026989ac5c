"""Errors extraction raises instead of returning a result value.

Everything about the *content* of a file is a result value (:class:`ExtractedDocument` with a
status and reason). Only conditions about the *source* are raised, because the pipeline reacts
to them differently: a vanished file removes its document; an unreadable one is retried.
"""

from __future__ import annotations

from backend.errors import NotFound, Unavailable


class SourceGone(NotFound):
    """The file disappeared (or stopped being a regular file) between the event and the read."""

    code = "source_gone"


class SourceUnreadable(Unavailable):
    """The file exists but cannot be read right now (permissions, a lock held by another
    program on Windows, an I/O error). Transient as far as the pipeline knows: retry later."""

    code = "source_unreadable"


class ExtractorUnavailable(Unavailable):
    """The extraction child process could not be started."""

    code = "extractor_unavailable"
