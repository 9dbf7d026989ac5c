"""The OpenAPI document the sidecar serves at ``/v1/openapi/openapi.json``.

Litestar builds it from the handlers (parameters, request Structs, reply Structs, the error
responses each handler declares). This module adds what handlers cannot express:

* the bearer-token security scheme (every route but ``/v1/health`` needs it);
* the request body of ``POST /v1/documents``, which the handler streams itself (multipart
  upload or JSON ``{path, scope, tags}``);
* dropping the ``400 {status_code, detail, extra}`` Litestar documents for every route with
  parameters: ``backend/api/errors.py`` answers validation errors as ``422 {error, message,
  detail}`` (declared by the handlers), so that entry described an answer that never comes;
* OpenAPI links between operations (the id a create returns → the routes that take it), so
  clients and stateful API testing can follow them.
"""

from __future__ import annotations

import copy
from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

_DOC = "$response.body#/document/id"
_JOB = "$response.body#/job_id"
_FOLDER = "$response.body#/id"

# (path, method, status) of a reply → {link name: (target operation path, method, {param: expression})}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/v1/documents", "post", "202"): {
        "GetDocument": ("/v1/documents/{doc_id}", "get", {"doc_id": _DOC}),
        "GetContent": ("/v1/documents/{doc_id}/content", "get", {"doc_id": _DOC}),
        "GetChunks": ("/v1/documents/{doc_id}/chunks", "get", {"doc_id": _DOC}),
        "ReindexDocument": ("/v1/documents/{doc_id}/reindex", "post", {"doc_id": _DOC}),
        "ShareDocument": ("/v1/documents/{doc_id}/share-url", "post", {"doc_id": _DOC}),
        "DeleteDocument": ("/v1/documents/{doc_id}", "delete", {"doc_id": _DOC}),
        "GetJob": ("/v1/jobs/{job_id}", "get", {"job_id": _JOB}),
        "CancelJob": ("/v1/jobs/{job_id}/cancel", "post", {"job_id": _JOB}),
    },
    ("/v1/documents/{doc_id}/reindex", "post", "202"): {
        "GetJob": ("/v1/jobs/{job_id}", "get", {"job_id": _JOB}),
        "CancelJob": ("/v1/jobs/{job_id}/cancel", "post", {"job_id": _JOB}),
    },
    ("/v1/folders", "post", "201"): {
        "RescanFolder": ("/v1/folders/{folder_id}/rescan", "post", {"folder_id": _FOLDER}),
        "DeleteFolder": ("/v1/folders/{folder_id}", "delete", {"folder_id": _FOLDER}),
    },
}

_UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The document's bytes (one part)."},
        "scope": {"type": "string", "description": "Scope (default: personal)."},
        "tags": {"type": "string", "description": "Comma-separated tags."},
    },
    "additionalProperties": False,
}
_PATH_BODY = {
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "description": "Absolute path of a local file, indexed in place."},
        "scope": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def openapi_config(title: str, version: str, path: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title=title,
        version=version,
        path=path,
        render_plugins=[SidecarJsonRender()],
        components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
        security=[{"bearer": []}],
    )


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of Litestar's document with the upload body and the links added."""
    out = copy.deepcopy(schema)
    paths = out.get("paths", {})
    for item in paths.values():
        for op in item.values():
            responses = op.get("responses", {})
            if _is_litestar_default_error(responses.get("400")):
                del responses["400"]
    add_doc = paths.get("/v1/documents", {}).get("post")
    if add_doc is not None:
        add_doc["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _UPLOAD_FORM},
                "application/json": {"schema": _PATH_BODY},
            },
        }
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationId": paths[target][tmethod]["operationId"], "parameters": params}
            for name, (target, tmethod, params) in links.items()
            if tmethod in paths.get(target, {})
        }
    return out


def _is_litestar_default_error(response: dict[str, Any] | None) -> bool:
    if response is None:
        return False
    body = response.get("content", {}).get("application/json", {}).get("schema", {})
    return set(body.get("required", ())) == {"detail", "status_code"}


class SidecarJsonRender(JsonRenderPlugin):
    """Litestar's JSON rendering of the document, finished by :func:`finish` (once)."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(request, finish(openapi_schema))
        return self._rendered
