"""Structured logs: one JSON object per line, stamped with the current request id.

The request id lives in a context variable set by the HTTP middleware, so any log call
made while a request runs (ours or Chalice's own traceback logging) carries it.
Never pass a password, token, secret or full email to a log call.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

#: Extra attributes a log call may pass with ``extra={"fields": {...}}``.
_FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; a traceback goes in ``exc`` as a string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "msg": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(logger: logging.Logger) -> None:
    """Give ``logger`` one JSON handler (idempotent) and stop it echoing to the root logger."""
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def log_request(logger: logging.Logger, fields: dict[str, Any], started: float) -> None:
    """The one access-log line per request: route, status, latency and outcome."""
    fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    logger.info("request", extra={_FIELDS: fields})
