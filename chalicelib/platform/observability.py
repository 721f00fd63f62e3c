"""Structured logs and metrics: one JSON object per line, stamped with the request id.

The request id lives in a context variable set by the HTTP middleware, so any log call
made while a request runs (ours or Chalice's own traceback logging) carries it.
Never pass a password, token, secret or full email to a log call.

Metrics ride on the same lines in CloudWatch Embedded Metric Format: a line with an
``_aws`` block becomes metrics in the ``Gatehouse`` namespace when Lambda's log goes to
CloudWatch, with no API call and no extra dependency. A small writer rather than AWS
Lambda Powertools: Powertools' metrics would add its import to every cold start and a
package to the layer for what is one JSON block (see docs/operations/observability.md).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
NAMESPACE = "Gatehouse"

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


def emf(metrics: Sequence[str], by: tuple[str, str] | None = None) -> dict[str, Any]:
    """The EMF fields that count each of ``metrics`` once, by stage, and also by stage
    and ``by`` (a dimension's name and value: an OAuth error code, say) when given."""
    stage = os.environ.get("GATEHOUSE_STAGE", "dev")
    dimensions = [["Stage"], ["Stage", by[0]]] if by else [["Stage"]]
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
                }
            ],
        },
        "Stage": stage,
        **({by[0]: by[1]} if by else {}),
        **dict.fromkeys(metrics, 1),
    }


#: Marks a security event's line; the audit archive's subscription filter
#: (``{ $.audit IS TRUE }``, infra/base.json) ships exactly those lines.
AUDIT = "audit"


def count(
    logger: logging.Logger,
    metric: str,
    fields: dict[str, Any],
    by: tuple[str, str] | None = None,
) -> None:
    """A security event worth a metric of its own (refresh reuse), as one audit line;
    ``by`` also counts it under one more dimension (see ``emf``)."""
    logger.warning(metric, extra={_FIELDS: {**fields, **emf([metric], by), AUDIT: True}})


def gauge(logger: logging.Logger, metric: str, value: float, fields: dict[str, Any]) -> None:
    """A measured value worth an alarm (the signing key's age), as one audit line."""
    measured = emf([metric])
    measured["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "None"
    logger.warning(metric, extra={_FIELDS: {**fields, **measured, metric: value, AUDIT: True}})


def log_request(
    logger: logging.Logger, fields: dict[str, Any], started: float, metrics: Sequence[str] = ()
) -> None:
    """The one access-log line per request: route, status, latency, outcome, metrics."""
    fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if metrics:
        fields.update(emf(metrics))
    logger.info("request", extra={_FIELDS: fields})
