"""Sessions: login opens one, refresh rotates it, logout ends it, the authorizer checks it.

A session item holds the hash of its one live refresh token. Refresh tokens are single
use: a refresh spends the presented token and issues the next in one conditional write,
so two racing refreshes with one token cannot both win. Presenting a spent token is
treated as theft (RFC 9700 4.14): the whole session, the family of every token it
issued, ends at once, and the event is recorded.

There is no grace window for an honest retry. A client that lost the answer to a refresh
cannot be given the same new pair again (only hashes are stored), so a window would
only let an attacker race the rightful client. The cost is that such a client signs in
again; the web page refreshes from one place, so it never races itself.

The authorizer accepts an access token only while its session item exists and has not
expired (one GetItem, no scan), so ending a session ends its access tokens at once;
API Gateway's authorizer cache is off for that reason.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.crypto.tokens import AccessClaims, AccessTokens, RefreshToken, is_id, new_id
from chalicelib.platform import errors, observability
from chalicelib.store.items import (
    ActivityEvent,
    CounterChange,
    Key,
    PasskeyUse,
    SecondFactor,
    SessionRecord,
    UserRecord,
)
from chalicelib.store.table import Store

_log = logging.getLogger("gatehouse")
NO_SECOND_FACTOR = SecondFactor()
#: The TokenPair's token_type (RFC 6750): a scheme name, not a secret.
BEARER = "Bearer"


@dataclass(frozen=True)
class Lifetimes:
    """How long a session lives: ``absolute`` from login, ``idle`` since the last refresh."""

    absolute: int
    idle: int


@dataclass(frozen=True)
class ClientGrant:
    """What an OAuth code exchange opens a session for: the user, the client, the granted
    scope, when the user signed in, and the session id the code named in advance."""

    user_id: str
    username: str
    client_id: str
    scope: str
    auth_time: int
    session_id: str
    #: The code's hash: the session opens only if the code was not presented again.
    code_hash: str


@dataclass(frozen=True)
class Device:
    """Where a request came from, as recorded on sessions and events."""

    user_agent: str
    ip: str

    def event(self, user_id: str, kind: str, outcome: str, at: float) -> ActivityEvent:
        """An activity event of ``user_id`` that happened here, at ``at`` (a clock's
        reading)."""
        return ActivityEvent(user_id, kind, outcome, int(at), self.ip, self.user_agent)


class Sessions:
    def __init__(
        self,
        store: Store,
        tokens: AccessTokens,
        clock: Callable[[], float],
        lifetimes: Lifetimes,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._lifetimes = lifetimes

    def start(
        self,
        user: UserRecord,
        device: Device,
        *,
        factor: SecondFactor = NO_SECOND_FACTOR,
        clear: Sequence[Key] = (),
        passkey: PasskeyUse | None = None,
        event_type: str = "login",
        password_hash: str | None = None,
        give_back: Sequence[CounterChange] = (),
    ) -> dict[str, Any]:
        """Open a session for ``user`` and return its first ``TokenPair``.

        One transaction writes the session and the login event (``event_type``),
        clears the account's failure counters, gives the claimed attempt back on the
        others (``give_back``, throttle.py), spends the second factor, moves the
        passkey's sign count (passkeys.py), and checks the user still exists and is not
        disabled and, for a password login, still has the ``password_hash`` the login
        verified; if any of that fails the login fails as a whole. (Without that last
        check, a login that verified the old password just before a change or reset
        could open its session after the change ended every other one.)
        """
        now = int(self._clock())
        session, refresh = self._new(user.id, user.username, device, new_id(), now)
        event = device.event(user.id, event_type, "success", now)
        opened = self._store.open_session(
            session,
            event=event,
            clear=list(clear),
            factor=factor,
            passkey=passkey,
            password_hash=password_hash,
            counters=give_back,
        )
        if not opened:
            raise errors.InvalidCredentials()
        return self._token_pair(session, refresh, now)

    def start_for_client(
        self, grant: ClientGrant, device: Device
    ) -> tuple[SessionRecord, RefreshToken]:
        """Open the session of an OAuth client's code exchange (``grant``), as one
        transaction like a login's (the user must still exist and not be disabled), with
        an ``app_sign_in`` event. The same item as a first-party session, so the
        authorizer's check, logout, a password change, a reset and deletion end it alike.
        ``InvalidToken`` if the user is gone or disabled."""
        now = int(self._clock())
        session, refresh = self._new(grant.user_id, grant.username, device, grant.session_id, now)
        session = replace(
            session, client_id=grant.client_id, scope=grant.scope, auth_time=grant.auth_time
        )
        event = device.event(grant.user_id, "app_sign_in", "success", now)
        opened = self._store.open_session(session, event=event, clear=[], factor=NO_SECOND_FACTOR)
        if not opened:
            raise errors.InvalidToken("The account cannot sign in.")
        return session, refresh

    def _new(
        self, user_id: str, username: str, device: Device, session_id: str, now: int
    ) -> tuple[SessionRecord, RefreshToken]:
        refresh = RefreshToken.new(user_id, session_id)
        absolute = now + self._lifetimes.absolute
        session = SessionRecord(
            id=session_id,
            user_id=user_id,
            username=username,
            refresh_hash=refresh.digest,
            created_at=now,
            last_used_at=now,
            expires_at=min(absolute, now + self._lifetimes.idle),
            absolute_expires_at=absolute,
            user_agent=device.user_agent,
            ip=device.ip,
        )
        return session, refresh

    def refresh(self, presented: str, device: Device) -> dict[str, Any]:
        """Spend ``presented`` and return the session's next ``TokenPair``.

        Two round trips: read the session, then rotate it in one transaction that
        also records the spent hash and checks the user is not disabled.
        """
        session, token = self.live_refresh(presented, device)
        if session.client_id:
            # An OAuth client's refresh token is for the token endpoint, with its client.
            raise errors.InvalidToken("The refresh token is invalid or expired.")
        rotated, following = self.rotate(session, token, device)
        return self._token_pair(rotated, following, int(self._clock()))

    def live_refresh(self, presented: str, device: Device) -> tuple[SessionRecord, RefreshToken]:
        """The live session whose refresh token ``presented`` is (one GetItem), or
        ``InvalidToken``; a spent token ends its whole family first (theft)."""
        token = RefreshToken.parse(presented)
        session = self._store.get_session(token.user_id, token.session_id)
        if session is None or session.expires_at <= int(self._clock()):
            raise errors.InvalidToken("The refresh token is invalid or expired.")
        if not hmac.compare_digest(session.refresh_hash, token.digest):
            self._refuse_spent(token, device)
        return session, token

    def rotate(
        self, session: SessionRecord, token: RefreshToken, device: Device
    ) -> tuple[SessionRecord, RefreshToken]:
        """Spend ``token`` (the live one of ``session``) for the next, in one conditional
        transaction; a refresh that loses the race is reuse, and ends the family."""
        now = int(self._clock())
        following = RefreshToken.new(token.user_id, token.session_id)
        rotated = replace(
            session,
            refresh_hash=following.digest,
            last_used_at=now,
            expires_at=min(session.absolute_expires_at, now + self._lifetimes.idle),
            user_agent=device.user_agent or session.user_agent,
            ip=device.ip or session.ip,
        )
        if not self._store.rotate_session(rotated, spent_hash=token.digest, now=now):
            # Lost a race with another refresh of the same token: that is reuse too.
            self._refuse_spent(token, device)
        return rotated, following

    def _refuse_spent(self, token: RefreshToken, device: Device) -> None:
        """A token that is not the session's live one: end the family if it was spent."""
        if self._store.spent_by(token.user_id, token.digest) == token.session_id:
            self._store.delete_session(token.user_id, token.session_id)
            observability.count(_log, "RefreshReuse", {"user_id": token.user_id})
            self._store.record_event(
                device.event(token.user_id, "refresh_reuse", "session_ended", self._clock())
            )
        raise errors.InvalidToken("The refresh token is invalid or expired.")

    def _token_pair(
        self, session: SessionRecord, refresh: RefreshToken, now: int
    ) -> dict[str, Any]:
        return {
            "access_token": self._tokens.issue(session.user_id, session.username, session.id),
            "token_type": BEARER,
            "expires_in": self._tokens.lifetime,
            "refresh_token": str(refresh),
            "refresh_expires_in": session.expires_at - now,
        }

    def authorize(self, access_token: str) -> AccessClaims:
        """Verify the token and that its session is still alive; one GetItem, no scan."""
        claims = self._tokens.verify(access_token)
        session = self._store.get_session(claims.user_id, claims.session_id)
        if session is None or session.expires_at <= int(self._clock()):
            raise errors.InvalidToken()
        return claims

    def logout(self, user_id: str, session_id: str, refresh_token: str | None) -> None:
        """End the caller's session and, if the caller names one of their own sessions by
        its refresh token, that one too. Logout always succeeds."""
        self._store.delete_session(user_id, session_id)
        if refresh_token:
            with contextlib.suppress(errors.InvalidToken):
                token = RefreshToken.parse(refresh_token)
                if token.user_id == user_id and token.session_id != session_id:
                    self._store.delete_session(user_id, token.session_id)

    def end(self, user_id: str, session_id: str) -> None:
        """End one of the user's sessions; ``NotFound`` if it is not theirs or is gone."""
        if not is_id(session_id) or not self._store.delete_session(user_id, session_id):
            raise errors.NotFound("No such session.")

    def end_others(self, user_id: str, *, keep: str) -> None:
        """End every session of the user except ``keep`` (after a password change), in
        batches: 49 other sessions cost one Query and two BatchWriteItems, not 49 calls."""
        self._store.delete_sessions(user_id, keep=keep)

    def end_all(self, user_id: str) -> int:
        """End every session of the user; returns how many there were."""
        return self._store.delete_sessions(user_id)

    def list(self, user_id: str, current_session_id: str) -> list[dict[str, Any]]:
        """The user's live sessions, newest first, with the caller's marked ``current``."""
        now = int(self._clock())
        # OAuth clients' sessions are the user's connected apps, listed apart.
        sessions = self._store.list_sessions(user_id)
        live = [s for s in sessions if s.expires_at > now and not s.client_id]
        live.sort(key=lambda s: s.created_at, reverse=True)
        return [
            {
                "id": s.id,
                "created_at": s.created_at,
                "last_used_at": s.last_used_at,
                "user_agent": s.user_agent,
                "ip": s.ip,
                "current": s.id == current_session_id,
            }
            for s in live
        ]
