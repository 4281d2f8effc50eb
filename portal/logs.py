"""Logging of a portal instance: plain text or one JSON object per line, with the request id.

    logging_config(log_format) the Litestar LoggingConfig of the web app
    configure_cli(log_format)  the same format for `jourpost` commands (no web app)
    request_id                 the id of the request being served (set by portal.web.accesslog)

Our loggers (`jourpost.*`) log at INFO, libraries at WARNING (httpx logs every request URL).
pyHanko's loggers stay at CRITICAL: they log each failed validation step with the signer
certificate's subject, i.e. the chair's name and personnummer.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.logging.config import LoggingConfig, default_handlers

request_id: ContextVar[str | None] = ContextVar("jourpost_request_id", default=None)
"""The current request's id (None outside a request)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
SILENCED = ("pyhanko", "pyhanko_certvalidator")
"""Loggers kept at CRITICAL everywhere: they log personal data from certificates."""


class RequestIdFilter(logging.Filter):
    """Copies the current request id onto the record (in the logging thread, where it is known).

    Installed on the handler, so it runs before the record crosses to the queue listener's
    thread (where the context variable would no longer be set).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid and rid != "-":
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # structured extras, e.g. the access log's
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__  # the type only: messages may hold PII
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain-text line; exceptions by type only (their messages may hold personal data)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        if not record.exc_info:
            return super().format(record)
        exc_type = record.exc_info[0]
        bare = copy.copy(record)  # other handlers may still want the traceback
        bare.exc_info, bare.exc_text, bare.stack_info = None, None, None
        line = super().format(bare)
        return f"{line} ({exc_type.__name__})" if exc_type is not None else line


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for `log_format` ("text" or "json")."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def _formatter_factory(log_format: str) -> dict[str, Any]:
    cls = JsonFormatter if log_format == "json" else TextFormatter
    return {"()": f"{cls.__module__}.{cls.__qualname__}"}


def _handlers() -> dict[str, dict[str, Any]]:
    """Litestar's default handlers (they differ by Python version) with our request-id filter."""
    handlers = copy.deepcopy(default_handlers)
    for handler in handlers.values():
        handler["filters"] = ["request_id"]
    return handlers


def logging_config(log_format: str) -> LoggingConfig:
    """The web app's logging: our loggers at INFO, libraries at WARNING, pyHanko silenced.

    Exceptions are logged by portal.web.errors (type only), never by Litestar.
    """
    return LoggingConfig(
        root={"level": "WARNING", "handlers": ["queue_listener"]},
        formatters={"standard": _formatter_factory(log_format)},
        filters={"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        handlers=_handlers(),
        loggers={
            "jourpost": {"level": "INFO", "propagate": True},
            **{name: {"level": "CRITICAL", "propagate": True} for name in SILENCED},
        },
        log_exceptions="never",
    )


def configure_cli(log_format: str) -> None:
    """Log `jourpost` commands to stderr in `log_format`; our loggers at INFO, pyHanko silenced."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("jourpost").setLevel(logging.INFO)
    for name in SILENCED:
        logging.getLogger(name).setLevel(logging.CRITICAL)
