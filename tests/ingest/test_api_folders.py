"""Folders API: refusals, recursive and glob options, rescan, removal with or without documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.harness import make_settings, running_app, wait_for, wait_idle

pytestmark = pytest.mark.anyio


async def test_folder_refusals(tmp_path: Path) -> None:
    root = (tmp_path / "root").resolve()
    (root / "inner").mkdir(parents=True)
    (tmp_path / "file.txt").write_text("x")
    settings = make_settings(tmp_path / "data")
    async with running_app(settings) as (client, _):
        assert (await client.post("/v1/folders", json={"path": str(root)})).status_code == 201
        cases = [
            ({"path": str(root)}, 409, "already watched"),
            ({"path": str(root / "inner")}, 409, "overlaps"),
            ({"path": str(tmp_path)}, 409, "overlaps"),
            ({"path": "relative/dir"}, 422, "absolute"),
            ({"path": str(tmp_path / "nope")}, 404, "no such folder"),
            ({"path": str(tmp_path / "file.txt")}, 422, "not a directory"),
            ({"path": str(settings.data_dir)}, 422, "data dir"),
            ({"path": str(root), "include": [""]}, 422, "invalid glob"),
            ({"path": str(root), "unknown": 1}, 422, "Validation failed"),
        ]
        for body, status, words in cases:
            r = await client.post("/v1/folders", json=body)
            assert r.status_code == status, (body, r.text)
            assert words in r.json()["message"], (body, r.json())
        wrong_type = await client.post("/v1/folders", content=b"path=/x", headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 415
        assert (await client.delete("/v1/folders/999")).status_code == 404
        assert (await client.post("/v1/folders/999/rescan")).status_code == 404
        assert len((await client.get("/v1/folders")).json()["items"]) == 1


async def test_non_recursive_globs_rescan_and_removal(tmp_path: Path) -> None:
    root = (tmp_path / "notes").resolve()
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\ntop level markdown")
    (root / "b.txt").write_text("top level text")
    (root / "sub" / "c.md").write_text("# C\n\nnested")
    async with running_app(make_settings(tmp_path / "data", watch_rescan_interval_s=3600)) as (client, services):
        folder = (
            await client.post(
                "/v1/folders", json={"path": str(root), "scope": "notes", "recursive": False, "include": ["*.md"]}
            )
        ).json()
        assert folder["recursive"] is False and folder["include"] == ["*.md"]

        async def names() -> list[str]:
            items = (await client.get("/v1/documents", params={"folder_id": folder["id"]})).json()["items"]
            return sorted(d["filename"] for d in items)

        async def only_a() -> bool:
            return await names() == ["a.md"]

        await wait_for(only_a, 30, "the non-recursive *.md scan")
        await wait_idle(services)
        doc = (await client.get("/v1/documents", params={"folder_id": folder["id"]})).json()["items"][0]
        assert doc["scope"] == "notes" and doc["status"] == "embedded"
        refused = await client.delete(f"/v1/documents/{doc['id']}")
        assert refused.status_code == 409 and "watched folder" in refused.json()["message"]

        r = await client.post(f"/v1/folders/{folder['id']}/rescan")
        assert r.status_code == 202
        removed = await client.delete(f"/v1/folders/{folder['id']}", params={"keep_documents": "true"})
        assert removed.status_code == 200
        assert (await client.get("/v1/folders")).json()["items"] == []
        kept = (await client.get(f"/v1/documents/{doc['id']}")).json()
        assert kept["status"] == "embedded" and kept["folder_id"] is None
