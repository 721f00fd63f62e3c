"""The shape of a JSON body member: what ``http.Field`` checks and openapi.py renders.

Kept apart from http.py so that a shape may be declared below the HTTP edge (the
WebAuthn credential shapes of credentials.py are read by the ceremony code too).
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.platform import errors

Schema = dict[str, Any]


class Shape(Protocol):
    """The structure of a JSON object member (credentials.py has the WebAuthn ones)."""

    def problems(self, path: str, value: Any) -> list[errors.FieldError]:
        """Every way ``value`` (found at ``path``) is wrong; empty if it is right."""
        ...

    def schema(self) -> Schema:
        """The JSON Schema of what ``problems`` accepts, for the OpenAPI document."""
        ...
