"""msgspec Structs describing what the API answers, so the OpenAPI schema is the real contract.

Handlers build their replies as before (dicts from the repositories and services) and pass
them through :func:`reply`, which converts them into these Structs: a reply whose shape drifted
from its declaration fails loudly (and in the API fuzz test) instead of silently breaking the
published schema. The JSON is the same as the dict's: every key, in the same form.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class Out(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every reply Struct: unknown keys are a bug, not something to drop silently."""


def reply(value: Any, type_: type[T]) -> T:
    """``value`` (a dict, or a list of dicts) as ``type_``; raises if its shape does not match."""
    return msgspec.convert(value, type_)
