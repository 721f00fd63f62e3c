"""The provider's browser sign-in: which Gatehouse session the browser at the
authorization endpoint belongs to.

The web page keeps its session in bearer tokens and an HttpOnly refresh cookie that only
``/token`` routes see. ``prompt=none``, ``max_age`` and ``id_token_hint`` need the
authorization endpoint to know who is signed in, so a page sign-in also sets
``gh_signin`` (HttpOnly, Secure, SameSite=Lax, sent only to ``/oauth2``): the user and
session id with an HMAC under the key ring's data key. It names a session and proves
nothing alone: the session item must still be alive (one GetItem), so logout, a password
change, a reset or deletion end it with the session. Lax, not Strict: the browser
arrives from the client's site by a top-level navigation, which Strict would strip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from chalicelib.crypto.tokens import RefreshToken, is_id
from chalicelib.platform import errors
from chalicelib.store.items import SessionRecord
from chalicelib.store.table import Store

SIGNIN_COOKIE = "gh_signin"
_PURPOSE = b"gatehouse/oauth-signin/v1|"


class BrowserSignIn:
    def __init__(self, store: Store, key: Callable[[], bytes], clock: Callable[[], float]) -> None:
        self._store = store
        self._key = key
        self._clock = clock

    def _mac(self, user_id: str, session_id: str) -> str:
        message = _PURPOSE + f"{user_id}.{session_id}".encode("ascii")
        digest = hmac.new(self._key(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def cookie_value(self, refresh_token: str) -> str:
        """The cookie for the session a page sign-in (or refresh) just answered."""
        token = RefreshToken.parse(refresh_token)
        return f"{token.user_id}.{token.session_id}.{self._mac(token.user_id, token.session_id)}"

    def session(self, cookie: str | None) -> SessionRecord | None:
        """The live first-party session the cookie names, or None (no cookie, a forged
        or stale one, an ended session)."""
        parts = (cookie or "").split(".")
        if len(parts) != 3 or not (is_id(parts[0]) and is_id(parts[1])):
            return None
        user_id, session_id, mac = parts
        try:
            expected = self._mac(user_id, session_id)
        except errors.ServiceUnavailable:
            return None
        if not hmac.compare_digest(expected, mac):
            return None
        session = self._store.get_session(user_id, session_id)
        if session is None or session.client_id or session.expires_at <= int(self._clock()):
            return None
        return session
