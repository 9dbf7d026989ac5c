"""Logging: JSON lines on stderr and in a rotating file, each with the current request id.

stdout is reserved for the single ready line the parent process parses, so no handler here
ever writes to it. Configured by :func:`configure_logging`, called by ``serve`` (never at import).
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

#: The id of the HTTP request being served in this context ("-" outside requests).
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in out and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _LogFile(logging.handlers.RotatingFileHandler):
    """The log file. A record it cannot write for lack of space is dropped here (it still
    reaches stderr) instead of printing a traceback per log line while the disk is full."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return
        super().handleError(record)


def configure_logging(level: str, log_dir: Path | None, *, max_bytes: int, backups: int) -> list[logging.Handler]:
    """Send all logging to stderr (and ``log_dir/docsidecar.log``) as JSON lines.

    Returns the installed handlers so the caller can remove and close them at shutdown.
    """
    formatter = JsonFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            _LogFile(
                log_dir / "docsidecar.log",
                maxBytes=max_bytes,
                backupCount=backups,
                encoding="utf-8",
            )
        )
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    return handlers


def remove_handlers(handlers: list[logging.Handler]) -> None:
    root = logging.getLogger()
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()
