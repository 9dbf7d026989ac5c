"""Settings: one frozen dataclass, every field documented, read from CLI flags and env vars.

Precedence (highest first): command-line flag, ``DOCSIDECAR_<FIELD>`` environment variable,
default. This module does no I/O: it only parses strings. ``Settings.fields_doc()`` feeds the
README table and ``--help``; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backend.errors import ValidationFailed
from backend.osdeps.paths import default_data_dir

ENV_PREFIX = "DOCSIDECAR_"

Parser = Callable[[str], Any]


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def _optional_int(raw: str) -> int | None:
    return None if raw.strip() in {"", "none"} else int(raw)


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    return port


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {value}")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be a positive number, got {value}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a finite number >= 0")
    return value


def _download_mode(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"eager", "on_demand"}:
        raise ValueError(f"expected eager or on_demand, got {raw!r}")
    return value


def _provider(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"onnx", "http"}:
        raise ValueError(f"expected onnx or http, got {raw!r}")
    return value


def _http_base_url(raw: str) -> str | None:
    """A provider's root URL: http(s), a host, no credentials/query/fragment; a trailing
    ``/v1`` (the OpenAI SDKs' convention) is dropped, the client appends ``/v1/embeddings``."""
    value = raw.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not contain credentials; set DOCSIDECAR_EMBED_HTTP_API_KEY instead")
    if parts.query or parts.fragment:
        raise ValueError("the URL must not contain a query string or fragment")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return f"{parts.scheme}://{parts.netloc}{path}"


def _optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _embedding_dim(raw: str) -> int | None:
    if raw.strip() in {"", "none"}:
        return None
    value = _positive_int(raw)
    if value % 8:
        raise ValueError(f"the binary vector index needs a dimension divisible by 8, got {value}")
    return value


def _setting(default: Any, doc: str, parse: Parser, *, secret: bool = False, cli: bool = True) -> Any:
    return field(
        default=default,
        repr=not secret,
        metadata={"doc": doc, "parse": parse, "secret": secret, "cli": cli},
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the sidecar can be told. Construct with :meth:`Settings.load`."""

    data_dir: Path = _setting(
        None,
        "Directory holding all state (database, uploaded copies, token, logs). Created with mode "
        "0700. Default: $XDG_DATA_HOME/docsidecar on Linux, ~/Library/Application Support/"
        "docsidecar on macOS, %LOCALAPPDATA%\\docsidecar on Windows.",
        Path,
    )
    port: int = _setting(
        0,
        "TCP port on 127.0.0.1; 0 picks a free ephemeral port (reported in the ready line).",
        _port,
    )
    token: str | None = _setting(
        None,
        "Bearer token clients must send. Set by the parent process through the environment; when "
        "unset a random token is generated and written to <data_dir>/token (mode 0600).",
        str,
        secret=True,
        cli=False,
    )
    parent_pid: int | None = _setting(
        None,
        "Exit when the process with this pid exits (the Electron main process).",
        _optional_int,
    )
    stdin_watch: bool = _setting(
        False, "Exit when stdin reaches end-of-file (the parent closed the pipe or died).", _bool
    )
    log_level: str = _setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", _log_level)
    log_file_max_bytes: int = _setting(
        5 * 1024 * 1024, "Size at which <data_dir>/logs/docsidecar.log is rotated.", _positive_int
    )
    log_file_backups: int = _setting(3, "Rotated log files kept.", _non_negative_int)
    cors_origins: tuple[str, ...] = _setting(
        ("app://*",),
        "Comma-separated browser origins allowed to call the API (CORS). An entry 'scheme://*' "
        "allows every origin of that scheme; 'null' allows file:// pages (off by default because "
        "sandboxed iframes of any website also send Origin: null).",
        _csv,
    )
    max_body_bytes: int = _setting(
        1024 * 1024, "Largest accepted request body for JSON routes, in bytes.", _positive_int
    )
    max_upload_bytes: int = _setting(
        512 * 1024 * 1024, "Largest accepted uploaded or indexed file, in bytes.", _positive_int
    )
    models_dir: Path | None = _setting(
        None,
        "Directory with model manifests and fetched model files. Default: the bundled models/ "
        "directory (source checkout or desktop bundle).",
        Path,
    )
    model_id: str = _setting("all-MiniLM-L6-v2-int8", "Embedding model used for new vectors (a manifest id).", str)
    embed_threads: int = _setting(
        0,
        "onnxruntime intra-op threads for embedding; 0 means the number of physical cores.",
        _non_negative_int,
    )
    # -- optional external embedding provider (backend/embed/http_service.py) ---------------
    embed_provider: str = _setting(
        "onnx",
        "Where vectors come from: 'onnx' (the local model_id, offline) or 'http' (an OpenAI-"
        "compatible /v1/embeddings server: Ollama, HF TEI, llama.cpp, vLLM, OpenAI...; needs the "
        "embed_http_* settings). Chunking always uses model_id's tokenizer.",
        _provider,
    )
    embed_http_base_url: str | None = _setting(
        None,
        "Root URL of the embeddings server, e.g. http://127.0.0.1:11434 (a trailing /v1 is "
        "accepted); the sidecar posts to <url>/v1/embeddings. No credentials in the URL.",
        _http_base_url,
    )
    embed_http_model: str | None = _setting(
        None, "Model name sent to the embeddings server (its own name, e.g. nomic-embed-text).", _optional_str
    )
    embed_http_model_id: str | None = _setting(
        None,
        "Id the provider's vectors are tagged with in the index. Used only if the index is empty "
        "or holds vectors of exactly this id and embed_http_dim; otherwise the provider is refused "
        "(keyword search keeps working).",
        _optional_str,
    )
    embed_http_dim: int | None = _setting(
        None,
        "Dimension of the provider's vectors (divisible by 8); a server answering another dimension is refused.",
        _embedding_dim,
    )
    embed_http_api_key: str | None = _setting(
        None,
        "Bearer token sent to the embeddings server (environment only; never logged or shown in /v1/status).",
        _optional_str,
        secret=True,
        cli=False,
    )
    embed_http_timeout_s: float = _setting(
        30.0, "Time limit of one request to the embeddings server, in seconds.", _positive_float
    )
    embed_http_attempts: int = _setting(
        4,
        "Attempts per request for transient failures (timeouts, connection errors, 429, 5xx), with "
        "exponential backoff and jitter (a Retry-After is honoured).",
        _positive_int,
    )
    embed_http_cooldown_s: float = _setting(
        30.0,
        "After 5 consecutive failed requests the server is not called for this long (circuit "
        "breaker); while it is unavailable it is probed at this interval and used again once it answers.",
        _positive_float,
    )
    chunk_tokens: int = _setting(200, "Target chunk size in model tokens (the model reads at most 256).", _positive_int)
    chunk_overlap_tokens: int = _setting(
        30,
        "Tokens shared by consecutive chunks of a document (~15 % of the target).",
        _non_negative_int,
    )
    extract_timeout_s: float = _setting(
        120.0,
        "Wall-clock limit for extracting one file; a file over it is recorded as failed.",
        _positive_float,
    )
    max_queued_jobs: int = _setting(
        50_000,
        "Backpressure: when this many jobs are queued, uploads, paths and reindex requests get 429 "
        "with Retry-After; watched folders fill the queue only up to 90 % of it and admit their "
        "remaining files as it drains.",
        _positive_int,
    )
    ingest_retry_base_s: float = _setting(
        2.0,
        "Backoff of a job after a transient failure (file locked, I/O error): this many seconds, "
        "doubled at each attempt (capped at 300 s); a job gives up after 5 attempts.",
        _positive_float,
    )
    min_free_bytes: int = _setting(
        64 * 1024 * 1024,
        "Jobs wait (and /v1/status reports disk_low) while the data dir's disk has less free space "
        "than this, before it is full; 0 = only when a write fails for lack of space.",
        _non_negative_int,
    )
    watch_quiet_s: float = _setting(
        1.0,
        "A watched folder's events are handled once it has been quiet this long (editors save in bursts).",
        _positive_float,
    )
    watch_rescan_interval_s: float = _setting(
        1800.0,
        "Full rescan of every natively watched folder, catching events the OS dropped.",
        _positive_float,
    )
    watch_poll_interval_s: float = _setting(
        300.0,
        "Full rescan interval of folders that cannot be watched natively (over the watch budget).",
        _positive_float,
    )
    watch_max_dirs: int = _setting(
        0,
        "Watch budget: directories the sidecar watches natively (Linux: one inotify watch each); "
        "folders beyond it are scanned every watch_poll_interval_s. 0 = half of "
        "fs.inotify.max_user_watches on Linux, unlimited elsewhere.",
        _non_negative_int,
    )
    search_cache_ttl_s: float = _setting(
        30.0,
        "Seconds a search result stays cached (any change to the index drops the cache at once); 0 disables it.",
        _non_negative_float,
    )
    shutdown_grace_s: float = _setting(
        1.0,
        "Seconds open connections (e.g. event streams) get to finish at shutdown.",
        _positive_float,
    )
    # -- cloud sync (sync/; inactive until a session is configured) -------------------------
    sync_auto: bool = _setting(
        True,
        "Sync in the background (local changes, a timer, network changes); false: only when POST /v1/sync/run asks.",
        _bool,
    )
    sync_interval_s: float = _setting(
        60.0,
        "Seconds between background pulls from Supabase while signed in (local changes push sooner).",
        _positive_float,
    )
    sync_download: str = _setting(
        "eager",
        "Original files of documents synced from other devices: 'eager' downloads them with the sync, "
        "'on_demand' when their content is first requested.",
        _download_mode,
    )
    sync_retry_attempts: int = _setting(
        6, "Attempts per Supabase request for transient failures (network, 408/429/5xx).", _positive_int
    )
    sync_backoff_initial_s: float = _setting(
        0.5, "First retry delay for Supabase requests; doubles per attempt, with jitter.", _positive_float
    )
    sync_backoff_max_s: float = _setting(
        30.0, "Longest retry delay; also the least pause after a failed sync run.", _positive_float
    )
    sync_connectivity_poll_s: float = _setting(
        5.0, "How often the network interfaces are checked; a change triggers a sync at once.", _positive_float
    )
    sync_share_cache_s: float = _setting(
        300.0,
        "Signed share URLs are reused for at most this long (and at most half their lifetime).",
        _positive_float,
    )

    def __post_init__(self) -> None:
        if self.embed_provider == "http":
            required = ("embed_http_base_url", "embed_http_model", "embed_http_model_id", "embed_http_dim")
            missing = [ENV_PREFIX + name.upper() for name in required if getattr(self, name) is None]
            if missing:
                raise ValidationFailed(
                    f"{ENV_PREFIX}EMBED_PROVIDER=http needs {', '.join(missing)}",
                    detail={"setting": "embed_provider", "missing": missing},
                )

    @classmethod
    def load(
        cls,
        env: Mapping[str, str],
        overrides: Mapping[str, Any] | None = None,
        *,
        platform: str = sys.platform,
    ) -> Settings:
        """Build settings from env vars and already-parsed CLI overrides (``None`` = unset)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                try:
                    values[f.name] = f.metadata["parse"](raw)
                except (ValueError, TypeError) as exc:
                    raise ValidationFailed(
                        f"invalid value for {ENV_PREFIX + f.name.upper()}: {exc}",
                        detail={"setting": f.name},
                    ) from exc
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        if values.get("data_dir") is None:
            values["data_dir"] = default_data_dir(env, platform)
        values["data_dir"] = Path(values["data_dir"]).expanduser().absolute()
        if values.get("models_dir") is not None:
            values["models_dir"] = Path(values["models_dir"]).expanduser().absolute()
        return cls(**values)

    @classmethod
    def fields_doc(cls) -> list[tuple[str, str, str, str]]:
        """(field name, env var, default shown, doc) for every setting, in declaration order."""
        rows = []
        for f in dataclasses.fields(cls):
            if f.metadata["secret"] or f.default is None:
                shown = "unset"
            elif isinstance(f.default, tuple):
                shown = ",".join(f.default)
            else:
                shown = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
            rows.append((f.name, ENV_PREFIX + f.name.upper(), shown, f.metadata["doc"]))
        return rows

    @classmethod
    def cli_fields(cls) -> list[dataclasses.Field[Any]]:
        """Fields exposed as ``--flag`` options of ``docsidecar serve``."""
        return [f for f in dataclasses.fields(cls) if f.metadata["cli"]]
