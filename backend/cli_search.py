"""``docsidecar search QUERY``: ask the running sidecar (``POST /v1/search``) and print the hits.

Without a running sidecar the command answers in-process from the same data dir (the store's
own writer thread and the embedding model start for the duration of the command; keyword
search answers even if the model is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from backend.errors import SidecarError
from backend.settings import Settings

WIDTH = 100


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help='what to look for; "quoted phrases" and prefix* are supported')
    parser.add_argument("--mode", choices=("hybrid", "semantic", "keyword"), default="hybrid")
    parser.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    parser.add_argument("--scope", action="append", default=None, help="only this scope (repeatable)")
    parser.add_argument("--tag", action="append", default=None, help="only documents with this tag (repeatable)")
    parser.add_argument("--mime", action="append", default=None, help="only this media type, e.g. text/* (repeatable)")
    parser.add_argument("--path-prefix", default=None, help="only files whose path starts with this")
    parser.add_argument("--after", default=None, help="only documents modified at/after (ISO date or unix seconds)")
    parser.add_argument("--before", default=None, help="only documents modified before (ISO date or unix seconds)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON response")


def _timestamp(raw: str | None) -> float | str | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return raw


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    filters = {
        "scopes": args.scope,
        "tags": args.tag,
        "mime_types": args.mime,
        "path_prefix": args.path_prefix,
        "modified_after": _timestamp(args.after),
        "modified_before": _timestamp(args.before),
    }
    body: dict[str, Any] = {"query": args.query, "mode": args.mode, "k": args.k}
    kept = {k: v for k, v in filters.items() if v is not None}
    if kept:
        body["filters"] = kept
    return body


def _marked(snippet: dict[str, Any]) -> str:
    text: str = snippet["text"]
    out, last = [], 0
    for a, b in snippet["highlights"]:
        out += [text[last:a], "[", text[a:b], "]"]
        last = b
    out.append(text[last:])
    return " ".join("".join(out).split())


def format_hits(result: dict[str, Any]) -> str:
    lines = []
    for warning in result.get("warnings", []):
        lines.append(f"note: {warning}")
    hits = result["hits"]
    if not hits:
        lines.append("no results")
    for i, h in enumerate(hits, 1):
        s = h["scores"]
        parts = [f"score {h['score']:.3f}"]
        if s.get("keyword") is not None:
            parts.append(f"keyword #{s['keyword_rank']}")
        if s.get("semantic") is not None:
            parts.append(f"semantic #{s['semantic_rank']} ({s['semantic']:.2f})")
        lines.append(f"{i:>2}. {h['title']}  [{', '.join(parts)}]")
        where = [h["path"] or h["filename"]]
        if h.get("page") is not None:
            where.append(f"page {h['page']}")
        if h["heading_path"]:
            where.append(" > ".join(h["heading_path"]))
        lines.append("    " + " · ".join(where))
        lines += textwrap.wrap(_marked(h["snippet"]), WIDTH, initial_indent="    ", subsequent_indent="    ")
    took = result.get("took_ms")
    if took is not None:
        lines.append(f"({len(hits)} hits in {took:.0f} ms{', cached' if result.get('cached') else ''})")
    return "\n".join(lines)


def _in_process(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from backend.api.search import FiltersBody, to_filters
    from backend.embed.service import EmbedConfig, EmbeddingService
    from backend.resources import default_models_dir
    from backend.search.service import SearchRequest, SearchService
    from backend.store import Store

    store = Store(settings.data_dir)
    embedding = EmbeddingService(
        EmbedConfig(models_dir=settings.models_dir or default_models_dir(), model_id=settings.model_id)
    )
    store.start()
    try:
        embedding.start()
        if body["mode"] != "keyword":
            embedding.wait_ready(120)
        service = SearchService(store, embedding)
        filters = to_filters(FiltersBody(**body["filters"])) if "filters" in body else to_filters(None)
        return service.search(SearchRequest(body["query"], body["mode"], body["k"], filters))
    finally:
        embedding.stop()
        store.stop()


def run(args: argparse.Namespace, settings: Settings) -> int:
    from backend.cli_client import running_client

    body = request_body(args)
    client = running_client(settings.data_dir)
    try:
        if client is None:
            print("docsidecar is not running; searching in-process", file=sys.stderr)
            result = _in_process(body, settings)
        else:
            with client:
                r = client.post("/v1/search", json=body)
            if r.status_code != 200:
                err = r.json()
                print(f"docsidecar: {err.get('message', r.text)}", file=sys.stderr)
                return 1
            result = r.json()
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else format_hits(result))
    return 0
