"""Streaming multipart upload parsing: the ``file`` part goes straight into the blob store.

The body is never held in memory: the parser consumes ``request.stream()`` chunk by chunk,
file bytes are hashed and written to a temp file as they arrive, and the size limit is
enforced while streaming (413 as soon as it is crossed, partial file removed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from multipart import (
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
    parse_options_header,
)

from backend.errors import BadRequest, UnsupportedMediaType, ValidationFailed
from backend.ingest.blobs import BlobStore

MAX_FIELD_BYTES = 64 * 1024
TEXT_FIELDS = frozenset({"scope", "tags"})


@dataclass
class ParsedUpload:
    blob_key: str
    size: int
    filename: str
    fields: dict[str, list[str]] = field(default_factory=dict)


def boundary_of(content_type: str) -> str:
    mime, options = parse_options_header(content_type)
    if mime != "multipart/form-data":
        raise UnsupportedMediaType(
            'upload a file as multipart/form-data (or send JSON {"path": …} to index a local file)',
            detail={"content_type": content_type or None},
        )
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    return str(boundary)


async def parse_upload(  # noqa: C901 - one streaming state machine, clearer in one piece
    stream: AsyncIterator[bytes], content_type: str, blobs: BlobStore, max_bytes: int
) -> ParsedUpload:
    """Parse the multipart body; exactly one ``file`` part, optional text fields."""
    parser = PushMultipartParser(boundary_of(content_type), max_header_count=16, max_segment_count=32, strict=True)
    writer = None
    result: ParsedUpload | None = None
    fields: dict[str, list[str]] = {}
    segment: MultipartSegment | None = None
    buf = bytearray()
    try:
        async for chunk in stream:
            for part in parser.parse(chunk):
                if isinstance(part, MultipartSegment):
                    segment, buf = part, bytearray()
                    if part.name == "file":
                        if writer is not None or result is not None:
                            raise ValidationFailed("exactly one 'file' part is allowed")
                        writer = blobs.writer(max_bytes)
                    elif part.name not in TEXT_FIELDS:
                        raise ValidationFailed(
                            f"unknown form field {part.name!r}",
                            detail={"allowed": ["file", *sorted(TEXT_FIELDS)]},
                        )
                elif part:
                    if segment is not None and segment.name == "file" and writer is not None:
                        writer.write(part)
                    else:
                        buf.extend(part)
                        if len(buf) > MAX_FIELD_BYTES:
                            raise ValidationFailed(
                                "form field too large",
                                detail={"field": segment.name if segment else None},
                            )
                else:
                    if segment is None:
                        raise BadRequest("malformed multipart body")
                    if segment.name == "file" and writer is not None:
                        key, size = writer.commit()
                        result = ParsedUpload(key, size, segment.filename or "upload")
                    else:
                        fields.setdefault(segment.name, []).append(buf.decode(segment.charset or "utf-8", "replace"))
                    segment = None
        parser.close()
    except (ParserError, ParserLimitReached) as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from exc
    finally:
        if writer is not None:
            writer.abort()
    if result is None:
        raise ValidationFailed("the form has no 'file' part", detail={"field": "file"})
    result.fields = fields
    return result
