"""Sessions: what login creates and what the authorizer checks on every request.

A session item holds the hash of its current refresh token. The authorizer accepts an
access token only while its session item exists and has not expired, so ending a
session (logout, password change, reuse detection) ends its access tokens at once,
at the cost of one GetItem per request (and API Gateway's authorizer cache off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import errors
from chalicelib.store import SessionRecord, Store, UserRecord
from chalicelib.tokens import AccessClaims, AccessTokens, RefreshToken, new_id


class Sessions:
    def __init__(
        self,
        store: Store,
        tokens: AccessTokens,
        clock: Callable[[], float],
        *,
        refresh_lifetime: int,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._refresh_lifetime = refresh_lifetime

    def start(self, user: UserRecord, *, user_agent: str, ip: str) -> dict[str, Any]:
        """Open a session for ``user`` and return its first ``TokenPair``."""
        now = int(self._clock())
        session_id = new_id()
        refresh = RefreshToken.new(user.id, session_id)
        self._store.put_session(
            SessionRecord(
                id=session_id,
                user_id=user.id,
                username=user.username,
                refresh_hash=refresh.digest,
                created_at=now,
                last_used_at=now,
                expires_at=now + self._refresh_lifetime,
                user_agent=user_agent,
                ip=ip,
            )
        )
        return self._token_pair(user.id, user.username, session_id, refresh)

    def _token_pair(
        self, user_id: str, username: str, session_id: str, refresh: RefreshToken
    ) -> dict[str, Any]:
        return {
            "access_token": self._tokens.issue(user_id, username, session_id),
            "token_type": "Bearer",  # nosec B105
            "expires_in": self._tokens.lifetime,
            "refresh_token": str(refresh),
            "refresh_expires_in": self._refresh_lifetime,
        }

    def authorize(self, access_token: str) -> AccessClaims:
        """Verify the token and that its session is still alive; one GetItem, no scan."""
        claims = self._tokens.verify(access_token)
        session = self._store.get_session(claims.user_id, claims.session_id)
        if session is None or session.expires_at <= int(self._clock()):
            raise errors.InvalidToken()
        return claims
