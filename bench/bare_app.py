"""The baseline for ``GET /protected``: the least a Chalice route can do for the same answer.

One route, no authorizer, no middleware: it verifies the very token Gatehouse issued
with pyjwt (same public key, algorithm, audience, issuer, leeway and required claims as
``chalicelib.crypto.tokens``) and then makes the DynamoDB calls the authorizer was seen to make
(one consistent GetItem of the session item), replayed with the same parameters, so the
baseline follows the table layout wherever it moves. What
Gatehouse adds on top (the authorizer round through ``LocalGateway``, the middleware,
the access log, records and problem handling) is what the ratio measures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
from chalice.app import Chalice, UnauthorizedError
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.crypto.keys import ALGORITHM
from chalicelib.crypto.tokens import _REQUIRED_CLAIMS, LEEWAY_SECONDS

PATH = "/verify"


def build(
    public_key: rsa.RSAPublicKey,
    *,
    audience: str,
    issuer: str,
    session_alive: Callable[[], bool],
    required: list[str] = _REQUIRED_CLAIMS,
) -> Chalice:
    """A fresh app whose one route answers as ``/protected`` does for a valid token (or,
    with ``required`` an OAuth client's claims, as userinfo does: bench/oauth.py)."""
    app = Chalice(app_name="bench-bare", configure_logs=False)

    @app.route(PATH)
    def verify() -> dict[str, Any]:
        request = app.current_request
        if request is None:
            raise UnauthorizedError()
        token = request.headers.get("authorization", "").partition(" ")[2]
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": required},
        )
        if not session_alive():
            raise UnauthorizedError()
        name = claims.get("username", "")
        return {"message": f"Hello, {name}.", "user": {"id": claims["sub"], "username": name}}

    return app
