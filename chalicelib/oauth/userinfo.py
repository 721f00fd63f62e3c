"""The UserInfo endpoint (OIDC Core 5.3): the claims of the scopes a client was granted.

The token may come as ``Authorization: Bearer`` or, on a POST, as the form's
``access_token`` (RFC 6750 2.1, 2.2), never both. It is a client's access token with the
``openid`` scope, whose session is still alive: one round trip reads the session and the
user together, so logout, "Remove access", a password change or deletion end it at once.
No authlib here: this is a verify and one read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib.crypto.tokens import bearer_token
from chalicelib.oauth.tokens import ClientTokens, user_claims
from chalicelib.platform import errors
from chalicelib.store.table import Store


def presented_token(authorization: str, form: Mapping[str, Sequence[str]]) -> str:
    """The one access token of a userinfo request, or ``InvalidToken``."""
    in_form = form.get("access_token", [])
    if authorization and in_form:
        raise errors.InvalidToken("Send the access token one way, not two (RFC 6750).")
    if len(in_form) == 1:
        return in_form[0]
    if not authorization.strip():
        raise errors.NoToken()
    return bearer_token(authorization)


class UserInfo:
    def __init__(self, store: Store, tokens: ClientTokens, clock: Callable[[], float]) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock

    def claims(self, access_token: str) -> dict[str, Any]:
        access = self._tokens.verify_access_token(access_token)
        if "openid" not in access.scopes:
            raise errors.InvalidToken("The access token was not granted the openid scope.")
        session, user = self._store.get_session_and_user(access.user_id, access.session_id)
        alive = session is not None and session.expires_at > int(self._clock())
        if not alive or user is None or user.disabled:
            raise errors.InvalidToken()
        scoped = user_claims(
            access.scopes,
            username=user.username,
            email=user.email,
            email_verified=user.email_verified,
            display_name=user.display_name,
        )
        return {"sub": user.id, **scoped}
