"""Search filters: validation and the one SQL predicate every retriever applies.

A filter restricts results to chunks of documents that match ALL given fields:

==================  ======================================================================
``scopes``          ``documents.scope`` is one of them
``document_ids``    ``documents.id`` is one of them
``tags``            the document has at least one of these tags
``mime_types``      ``documents.mime`` equals one of them; ``"type/*"`` matches a whole type
``path_prefix``     ``documents.path`` starts with this string (case-sensitive; uploads have
                    no path and never match)
``modified_after``  the document's modified time is >= this (unix seconds)
``modified_before`` ... is < this
==================  ======================================================================

The modified time is the file's mtime for indexed files and the time the document was added
for uploads (:data:`MODIFIED_SQL`). Filters are always evaluated against the ``documents`` and
``document_tags`` tables in the same read snapshot as the search, never against a mirror, so a
hit can never violate its filter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from backend.errors import ValidationFailed

MODIFIED_SQL = "coalesce(d.mtime_ns / 1e9, d.created_at)"
MAX_VALUES = 1000
MAX_VALUE_LEN = 4096


@dataclass(frozen=True, slots=True)
class SearchFilters:
    scopes: tuple[str, ...] | None = None
    document_ids: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    mime_types: tuple[str, ...] | None = None
    path_prefix: str | None = None
    modified_after: float | None = None
    modified_before: float | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__slots__)

    def key(self) -> tuple[Any, ...]:
        """A hashable canonical form (value order does not matter)."""
        return tuple(
            tuple(sorted(v)) if isinstance(v, tuple) else v for v in (getattr(self, f) for f in self.__slots__)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            f: (list(v) if isinstance(v, tuple) else v) for f in self.__slots__ if (v := getattr(self, f)) is not None
        }

    def predicate(self) -> tuple[str, list[Any]]:
        """``(sql, params)``: a boolean SQL expression over ``documents d`` ("1" if no filter)."""
        parts: list[str] = []
        params: list[Any] = []
        if self.scopes is not None:
            parts.append("d.scope IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(self.scopes))
        if self.document_ids is not None:
            parts.append("d.id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(self.document_ids))
        if self.tags is not None:
            parts.append(
                "d.id IN (SELECT document_id FROM document_tags WHERE tag IN (SELECT value FROM json_each(?)))"
            )
            params.append(json.dumps(self.tags))
        if self.mime_types is not None:
            exact = [m for m in self.mime_types if not m.endswith("/*")]
            families = [m[:-1] for m in self.mime_types if m.endswith("/*")]
            alts = []
            if exact:
                alts.append("coalesce(d.mime, '') IN (SELECT value FROM json_each(?))")
                params.append(json.dumps(exact))
            for fam in families:
                alts.append("substr(coalesce(d.mime, ''), 1, ?) = ?")
                params += [len(fam), fam]
            parts.append("(" + " OR ".join(alts) + ")")
        if self.path_prefix is not None:
            parts.append("d.path IS NOT NULL AND substr(d.path, 1, ?) = ?")
            params += [len(self.path_prefix), self.path_prefix]
        if self.modified_after is not None:
            parts.append(f"{MODIFIED_SQL} >= ?")
            params.append(self.modified_after)
        if self.modified_before is not None:
            parts.append(f"{MODIFIED_SQL} < ?")
            params.append(self.modified_before)
        return (" AND ".join(parts) if parts else "1"), params


def _strings(name: str, values: list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not values:
        raise ValidationFailed(
            f"filters.{name} must not be empty (leave it out to search everything)", detail={"field": name}
        )
    if len(values) > MAX_VALUES:
        raise ValidationFailed(f"filters.{name} holds more than {MAX_VALUES} values", detail={"field": name})
    for v in values:
        if not v or len(v) > MAX_VALUE_LEN or "\x00" in v:
            raise ValidationFailed(
                f"each value of filters.{name} must be 1..{MAX_VALUE_LEN} characters without NUL",
                detail={"field": name},
            )
    return tuple(dict.fromkeys(values))


def _mime(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    for m in values:
        major, sep, minor = m.partition("/")
        if not sep or not major or not minor or "*" in major or ("*" in minor and minor != "*"):
            raise ValidationFailed(
                f"filters.mime_types: {m!r} is not a media type like 'application/pdf' or 'text/*'",
                detail={"field": "mime_types"},
            )
    return tuple(m.lower() for m in values)


def make_filters(
    *,
    scopes: list[str] | None = None,
    document_ids: list[str] | None = None,
    tags: list[str] | None = None,
    mime_types: list[str] | None = None,
    path_prefix: str | None = None,
    modified_after: float | None = None,
    modified_before: float | None = None,
) -> SearchFilters:
    """Validated :class:`SearchFilters` (raises :class:`ValidationFailed` with the field name)."""
    if path_prefix is not None and (not path_prefix or len(path_prefix) > MAX_VALUE_LEN or "\x00" in path_prefix):
        raise ValidationFailed(
            f"filters.path_prefix must be 1..{MAX_VALUE_LEN} characters without NUL", detail={"field": "path_prefix"}
        )
    if modified_after is not None and modified_before is not None and modified_after >= modified_before:
        raise ValidationFailed(
            "filters.modified_after must be earlier than filters.modified_before",
            detail={"modified_after": modified_after, "modified_before": modified_before},
        )
    return SearchFilters(
        scopes=_strings("scopes", scopes),
        document_ids=_strings("document_ids", document_ids),
        tags=_strings("tags", tags),
        mime_types=_mime(_strings("mime_types", mime_types)),
        path_prefix=path_prefix,
        modified_after=modified_after,
        modified_before=modified_before,
    )
