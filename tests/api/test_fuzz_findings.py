"""Regression tests for what the API fuzz run (tests/fuzz/test_api_fuzz.py) found, each
reproduced with a plain request through the real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

TOO_BIG = 3295573177034161520640  # > 2**63: apsw could not bind it (OverflowError → 500)
ERROR_KEYS = {"error", "message", "detail"}


def _is_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == ERROR_KEYS, body
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/jobs/{TOO_BIG}"),
        ("POST", f"/v1/jobs/{TOO_BIG}/cancel"),
        ("DELETE", f"/v1/folders/{TOO_BIG}"),
        ("POST", f"/v1/folders/{TOO_BIG}/rescan"),
        ("POST", f"/v1/sync/dead-letters/{TOO_BIG}/retry"),
        ("GET", f"/v1/jobs?before={TOO_BIG}"),
        ("GET", f"/v1/documents?folder_id={TOO_BIG}"),
        ("GET", f"/v1/documents?folder_id=-{TOO_BIG}"),
        ("GET", f"/v1/sync/dead-letters?before={TOO_BIG}"),
        ("GET", f"/v1/sync/conflicts?before={TOO_BIG}"),
        ("GET", f"/v1/jobs/{2**53}"),
        ("GET", "/v1/jobs/0"),
    ],
)
async def test_out_of_range_integers_are_422_not_500(client: AsyncTestClient, method: str, path: str) -> None:  # type: ignore[type-arg]
    body = _is_error(await client.request(method, path), 422)
    assert body["error"] == "validation_failed"


async def test_chunk_offset_out_of_range_is_422(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    files = {"file": ("a.txt", b"some words", "text/plain")}
    doc_id = (await client.post("/v1/documents", files=files)).json()["document"]["id"]
    _is_error(await client.get(f"/v1/documents/{doc_id}/chunks?offset={TOO_BIG}"), 422)
    assert (await client.get(f"/v1/documents/{doc_id}/chunks?offset={2**53 - 1}")).status_code == 200


async def test_largest_allowed_id_is_a_plain_404(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    body = _is_error(await client.get(f"/v1/jobs/{2**53 - 1}"), 404)
    assert body["error"] == "not_found"


@pytest.mark.parametrize("path", ["/", "/proc", "/sys", "/dev"])
async def test_watching_a_filesystem_root_or_system_dir_is_refused(client: AsyncTestClient, path: str) -> None:  # type: ignore[type-arg]
    if not Path(path).is_dir():
        pytest.skip(f"{path} does not exist here")
    body = _is_error(await client.post("/v1/folders", json={"path": path}), 422)
    assert body["detail"]["path"] == path
    assert (await client.get("/v1/folders")).json()["items"] == []


async def test_watching_a_symlink_to_the_root_is_refused(client: AsyncTestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    link = tmp_path / "root-link"
    link.symlink_to("/")
    body = _is_error(await client.post("/v1/folders", json={"path": str(link)}), 422)
    assert body["detail"]["resolved"] == "/"


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/documents", {"GET", "POST", "OPTIONS"}),
        ("/v1/documents/abc", {"GET", "DELETE", "OPTIONS"}),
        ("/v1/sync/session", {"POST", "DELETE", "OPTIONS"}),
        ("/v1/folders/7", {"DELETE", "OPTIONS"}),
    ],
)
async def test_options_lists_every_method_of_the_path(client: AsyncTestClient, path: str, methods: set[str]) -> None:  # type: ignore[type-arg]
    r = await client.options(path)
    assert r.status_code == 204
    assert {m.strip() for m in r.headers["allow"].split(",")} == methods


async def test_method_not_allowed_names_the_allowed_methods(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    r = await client.patch("/v1/documents")
    body = _is_error(r, 405)
    assert body["error"] == "method_not_allowed"


async def _schema(client: AsyncTestClient) -> dict[str, Any]:  # type: ignore[type-arg]
    r = await client.get("/v1/openapi/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


async def test_every_error_response_is_documented_with_the_error_body(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """Before: Litestar's default 400 body ``{status_code, detail, extra}`` was documented
    while the API answers ``{error, message, detail}`` with 422 (schema violations)."""
    schema = await _schema(client)
    for path, item in schema["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert "403" in statuses, (method, path)
            if path != "/v1/health":
                assert "401" in statuses, (method, path)
            validated = [
                p for p in op.get("parameters", []) if p["in"] == "query" or p["schema"].get("type") != "string"
            ]
            if validated or op.get("requestBody"):  # a plain string path parameter cannot be invalid
                assert "422" in statuses, (method, path)
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                body = _resolve(schema, response["content"]["application/json"]["schema"])
                assert set(body["required"]) == ERROR_KEYS, (method, path, status, body)


async def test_success_replies_are_described_by_structs(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """Before: most replies were documented as a free-form object (``additionalProperties: {}``)."""
    schema = await _schema(client)
    loose = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    continue
                for media, content in response.get("content", {}).items():
                    if media == "application/json":
                        body = _resolve(schema, content["schema"])
                        if body.get("type") != "object" or "properties" not in body:
                            loose.append((method, path, status))
    assert loose == []


async def test_stream_metrics_and_file_media_types_are_documented(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    paths = (await _schema(client))["paths"]
    assert set(paths["/v1/events"]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}
    assert set(paths["/v1/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert set(paths["/v1/documents/{doc_id}/content"]["get"]["responses"]["200"]["content"]) == {"*/*"}
    metrics = await client.get("/v1/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_upload_body_security_and_links_are_in_the_schema(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    schema = await _schema(client)
    add = schema["paths"]["/v1/documents"]["post"]
    assert set(add["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/v1/health"]["get"]["security"] == [{}]
    links = add["responses"]["202"]["links"]
    ops = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert {link["operationId"] for link in links.values()} <= ops
    assert links["GetDocument"]["parameters"] == {"doc_id": "$response.body#/document/id"}
    # the link expression points at a real field of the reply
    files = {"file": ("a.txt", b"linked", "text/plain")}
    reply = (await client.post("/v1/documents", files=files)).json()
    assert (await client.get(f"/v1/documents/{reply['document']['id']}")).status_code == 200
    assert (await client.get(f"/v1/jobs/{reply['job_id']}")).status_code == 200


async def test_replies_keep_their_json_shape(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """The reply Structs change nothing on the wire: same keys as the repositories' dicts."""
    files = {"file": ("a.txt", b"shape", "text/plain")}
    added = (await client.post("/v1/documents", files=files)).json()
    assert set(added) == {"document", "job_id", "duplicate"}
    doc = (await client.get(f"/v1/documents/{added['document']['id']}")).json()
    assert "mtime_ns" not in doc and "blob_key" not in doc
    assert set(doc) == set(added["document"])
    job = (await client.get(f"/v1/jobs/{added['job_id']}")).json()
    assert set(job) == {"id", "kind", "document_id", "state", "attempts", "progress", "error", "payload",
                        "created_at", "started_at", "finished_at"}  # fmt: skip
    assert json.loads(json.dumps(job["progress"])) == job["progress"]
