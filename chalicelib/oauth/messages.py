"""An OAuth request and its answer as plain values, between the edge and the provider.

The edge builds ``HttpRequest`` from the Chalice request (with the issuer's URL of the
route, never one built from the ``Host`` header) and turns ``HttpAnswer`` back into a
response; the provider never sees Chalice. No authlib here: the edge imports this
module at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.accounts.sessions import Device


@dataclass(frozen=True)
class HttpRequest:
    """``headers`` is case-insensitive as the edge hands it over (authlib reads
    ``Authorization``); ``query`` and ``form`` keep every value of a repeated name;
    ``signin`` is the ``gh_signin`` cookie's value, if the browser sent one
    (oauth/browser.py)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, Sequence[str]]
    form: Mapping[str, Sequence[str]]
    device: Device
    signin: str | None = None


@dataclass(frozen=True)
class HttpAnswer:
    """What the route sends back: a status, headers and a text body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    #: The browser signed out (RP-initiated logout): drop its Gatehouse cookies.
    signed_out: bool = False


def json_answer(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] = {}
) -> HttpAnswer:
    """A JSON answer of the token-side endpoints, never cached (RFC 6749 5.1)."""
    sent = {**headers, "Content-Type": "application/json", "Cache-Control": "no-store"}
    return HttpAnswer(status, sent, json.dumps(body))


def oauth_error(error: str, description: str, status: int = 400) -> HttpAnswer:
    """An RFC 6749 5.2 error answer (the token endpoint's errors are not problems)."""
    return json_answer(status, {"error": error, "error_description": description})
