"""``OPTIONS`` answers whose ``Allow`` header lists every method of the path.

Litestar 2.25 creates an automatic OPTIONS handler when the first handler of a path is
registered and never updates it, so a path served by several handlers (``GET`` and ``POST
/v1/documents`` are separate functions) answered ``Allow: OPTIONS, POST``. These explicit
handlers, registered before the others, take its place. CORS preflights never reach them: the
edge answers those itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar import Response, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler


def options_handlers(handlers: Iterable[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """One OPTIONS handler per path of ``handlers``, announcing the methods served there."""
    methods: dict[str, set[str]] = {}
    for handler in handlers:
        for path in handler.paths:
            methods.setdefault(path, {"OPTIONS"}).update(handler.http_methods)
    return [_options(path, ", ".join(sorted(allowed))) for path, allowed in methods.items()]


def _options(path: str, allow: str) -> HTTPRouteHandler:
    def allowed_methods() -> Response[None]:
        return Response(content=None, status_code=204, headers={"Allow": allow})

    return route(path, http_method=[HttpMethod.OPTIONS], include_in_schema=False, sync_to_thread=False)(allowed_methods)
