"""Bounded parameter types shared by handlers.

SQLite integers are 64-bit: an id or offset past ``2**63 - 1`` cannot even be bound to a
statement (apsw raised ``OverflowError``, a 500, before these bounds existed). Ids are capped
at ``2**53 - 1`` (JavaScript's ``Number.MAX_SAFE_INTEGER``): the desktop app's Node client cannot
represent a larger id exactly anyway, and the bound survives JSON Schema tools that read it as
a double. Out-of-range values are refused as 422 and the bounds are published in the OpenAPI
schema.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

MAX_ID = 2**53 - 1

RowId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="Row id (1 … 2^53-1)")]
"""An integer id in the path."""

QueryRowId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]
"""An optional integer id (or ``before`` cursor) in the query string."""

Offset = Annotated[int, QueryParameter(ge=0, le=MAX_ID)]
