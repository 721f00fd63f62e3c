"""Passkeys (WebAuthn discoverable credentials): enrolment, management and sign-in.

Challenges: 32 random bytes, stored only as their SHA-256 (``ChallengeRecord``) for
five minutes, spent by a conditional delete (single use, even under a race) and bound:
an enrolment challenge to the signed-in user, a sign-in challenge to the login name it
was asked for, or to nobody (discoverable sign-in, no username typed). A ceremony
names its challenge only inside ``clientDataJSON``: the server hashes that to find it.

Sign-in opens a session exactly as ``/login`` does (``Sessions.start``), and the same
transaction writes the passkey's new sign count on the condition that the stored count
is still the one read, so two assertions racing with one count cannot both win. A count
that does not grow (WebAuthn L3 6.1.1: either count non-zero and the new one not
greater) means the authenticator may have been cloned: refused, with a
``passkey_login``/``cloned`` event and a ``PasskeyCloned`` metric.

Every sign-in failure is the one ``invalid_credentials``, counted on the client IP's
throttle; the reason goes to the log (and the activity when the user is known). The
``fido2`` library is imported by the first ceremony, not before (ceremony.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.accounts.sessions import Device, Sessions
from chalicelib.accounts.throttle import Throttle
from chalicelib.accounts.users import NO_USER, Accounts
from chalicelib.crypto.credentials import (
    ALGORITHMS,
    Assertion,
    Registration,
    RelyingParty,
    b64decode,
    b64encode,
)
from chalicelib.crypto.tokens import is_id
from chalicelib.platform import errors, observability
from chalicelib.store.items import (
    ActivityEvent,
    ChallengeRecord,
    PasskeyRecord,
    PasskeyUse,
    UserRecord,
)
from chalicelib.store.table import Store

if TYPE_CHECKING:
    from chalicelib.crypto.ceremony import Ceremony

_log = logging.getLogger("gatehouse")
CHALLENGE_SECONDS = 300
ENROL, SIGN_IN = "passkey_enrol", "passkey_login"
NAME_MAX = 64
#: The one answer to a refused passkey sign-in, whatever the reason.
REFUSED = "The passkey could not be verified."


def public_passkey(passkey: PasskeyRecord) -> dict[str, Any]:
    """The contract's ``Passkey``: never the public key or the sign count."""
    return {
        "id": passkey.credential_id,
        "name": passkey.name,
        "created_at": passkey.created_at,
        "last_used_at": passkey.last_used_at or None,
        "transports": [t for t in passkey.transports.split(",") if t],
        "backed_up": passkey.backed_up,
    }


def check_name(name: str) -> str:
    """A passkey's name, trimmed: 1 to 64 characters, none of them control characters."""
    trimmed = unicodedata.normalize("NFC", name).strip()
    if not 1 <= len(trimmed) <= NAME_MAX:
        raise errors.ValidationError.of_field(
            "name", "invalid_length", f"Use 1 to {NAME_MAX} characters."
        )
    if any(unicodedata.category(c).startswith("C") for c in trimmed):
        raise errors.ValidationError.of_field(
            "name", "invalid_characters", "The name may not hold control characters."
        )
    return trimmed


def cloned(stored: int, presented: int) -> bool:
    """WebAuthn's clone signal: a counting authenticator whose count did not grow."""
    return (stored != 0 or presented != 0) and presented <= stored


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


class Refusal(Exception):
    """A sign-in that fails: ``reason`` for the log, ``user`` when known (for the event)."""

    def __init__(self, reason: str, user: UserRecord | None = None, outcome: str = "failure"):
        super().__init__(reason)
        self.reason = reason
        self.user = user
        self.outcome = outcome


@dataclass(frozen=True)
class PasskeyPolicy:
    """The stage's relying party and how many passkeys one user may hold."""

    rp: RelyingParty
    limit: int


class Passkeys:
    """Passkey ceremonies and management; sign-in opens sessions through ``Sessions``."""

    def __init__(
        self,
        store: Store,
        accounts: Accounts,
        sessions: Sessions,
        throttle: Throttle,
        *,
        policy: PasskeyPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._sessions = sessions
        self._throttle = throttle
        self._policy = policy
        self._clock = clock
        self._verifier: Ceremony | None = None

    def _ceremony(self) -> Ceremony:
        """The verifier, built (and ``fido2`` imported) on the first ceremony."""
        if self._verifier is None:
            from chalicelib.crypto.ceremony import Ceremony  # noqa: PLC0415 - lazy: cold start

            self._verifier = Ceremony(self._policy.rp)
        return self._verifier

    def _challenge(
        self,
        purpose: str,
        *,
        user_id: str = "",
        login_key: str = "",
        device: Device | None = None,
    ) -> str:
        """A new challenge, stored (as its hash); with ``device``, in the same write as
        the claim on its IP's options counters and a check of its IP's failures
        (``Throttle.claim_with``), so a full one is a 429 and stores nothing."""
        challenge = secrets.token_bytes(32)
        expires = int(self._clock()) + CHALLENGE_SECONDS
        record = ChallengeRecord(purpose, user_id, login_key, expires)
        digest = _digest(challenge)
        if device is None:
            self._store.put_challenge(digest, record, [])
        else:
            self._throttle.claim_with(
                lambda changes: self._store.put_challenge(digest, record, changes),
                claim=self._throttle.counters(options=device.ip),
                check=self._throttle.counters(ip=device.ip),
            )
        return b64encode(challenge)

    def _event(
        self, user_id: str, kind: str, device: Device, outcome: str = "success"
    ) -> ActivityEvent:
        return device.event(user_id, kind, outcome, self._clock())

    # ---------------------------------------------------------------- enrolment

    def creation_options(self, user: UserRecord, step_up: Callable[[], None]) -> dict[str, Any]:
        """``PublicKeyCredentialCreationOptionsJSON`` once ``step_up`` passes; 409 if the
        user already holds as many passkeys as allowed. The limit is checked before the
        step-up, which spends a TOTP step or recovery code: a user at the limit keeps it
        (``enrol`` checks the limit again, in the transaction that adds the passkey)."""
        existing = self._store.list_passkeys(user.id)
        if len(existing) >= self._policy.limit:
            raise errors.PasskeyLimitReached()
        step_up()
        rp = self._policy.rp
        return {
            "rp": {"id": rp.id, "name": rp.name},
            "user": {
                "id": b64encode(user.id.encode("ascii")),
                "name": user.username,
                "displayName": user.display_name or user.username,
            },
            "challenge": self._challenge(ENROL, user_id=user.id),
            "pubKeyCredParams": [{"type": "public-key", "alg": alg} for alg in ALGORITHMS],
            "timeout": CHALLENGE_SECONDS * 1000,
            "excludeCredentials": [_descriptor(p) for p in existing],
            "authenticatorSelection": {
                "residentKey": "required",
                "requireResidentKey": True,
                "userVerification": "required",
            },
            "attestation": "none",
        }

    def enrol(
        self, user_id: str, credential: Mapping[str, Any], name: str | None, device: Device
    ) -> dict[str, Any]:
        """Verify a new credential against the user's enrolment challenge and store it."""
        from chalicelib.crypto import ceremony  # noqa: PLC0415 - lazy: cold start

        user = self._accounts.get(user_id)
        label = check_name(name) if name is not None else self._default_name()
        registration = Registration.of(credential)
        response = ceremony.parse_registration(registration, "credential")
        challenge = ceremony.challenge_of(response)
        now = int(self._clock())
        try:
            if self._store.take_challenge(_digest(challenge), ENROL, now, user_id=user.id) is None:
                raise ceremony.Refused("unknown, spent, expired or foreign challenge")
            new = self._ceremony().verify_registration(response, challenge)
        except ceremony.Refused as refused:
            _log.warning("PasskeyNotEnrolled", extra={"fields": {"reason": refused.reason}})
            raise errors.ValidationError.of_field(
                "credential", "verification_failed", "The passkey could not be verified."
            ) from None
        passkey = PasskeyRecord(
            user_id=user.id,
            credential_id=b64encode(new.credential_id),
            public_key=b64encode(new.public_key),
            sign_count=new.sign_count,
            transports=",".join(registration.transports),
            name=label,
            created_at=now,
            last_used_at=0,
            backed_up=new.backed_up,
        )
        self._store.add_passkey(
            passkey, limit=self._policy.limit, event=self._event(user.id, "passkey_added", device)
        )
        return public_passkey(passkey)

    def _default_name(self) -> str:
        return time.strftime("Passkey %Y-%m-%d", time.gmtime(self._clock()))

    # ---------------------------------------------------------------- management

    def list_for(self, user_id: str) -> list[dict[str, Any]]:
        """The user's passkeys, newest first."""
        found = self._store.list_passkeys(user_id)
        found.sort(key=lambda p: (p.created_at, p.credential_id), reverse=True)
        return [public_passkey(p) for p in found]

    def rename(self, user_id: str, passkey_id: str, name: str, device: Device) -> dict[str, Any]:
        label = check_name(name)
        _known_shape(passkey_id)
        event = self._event(user_id, "passkey_renamed", device)
        if not self._store.rename_passkey(user_id, passkey_id, label, event=event):
            raise errors.NotFound("No such passkey.")
        passkey = self._store.get_passkey(user_id, passkey_id)
        if passkey is None:  # removed just after the rename
            raise errors.NotFound("No such passkey.")
        return public_passkey(passkey)

    def remove(self, user_id: str, passkey_id: str, device: Device) -> None:
        _known_shape(passkey_id)
        event = self._event(user_id, "passkey_removed", device)
        if not self._store.remove_passkey(user_id, passkey_id, event=event):
            raise errors.NotFound("No such passkey.")

    # ---------------------------------------------------------------- sign-in

    def request_options(self, login: str | None, device: Device) -> dict[str, Any]:
        """``PublicKeyCredentialRequestOptionsJSON``, throttled per client IP twice: by
        its failures, like login, and by its own count of options asked for (each
        writes a challenge), checked in the same read and counted in the challenge's
        write. ``allowCredentials`` is always empty: every Gatehouse passkey is
        discoverable (enrolment requires a resident key), and a list (real, or decoys
        for names without passkeys) would tell whether an account has passkeys, since
        decoys cannot match the real lists' counts and transports. A login name only
        binds the challenge to that name (``_owner``); it is never looked up here, so
        the answer and its round trips are the same for every name."""
        key = Accounts.login_key(login) if login else ""
        return {
            "challenge": self._challenge(SIGN_IN, login_key=key, device=device),
            "timeout": CHALLENGE_SECONDS * 1000,
            "rpId": self._policy.rp.id,
            "allowCredentials": [],
            "userVerification": "required",
        }

    def sign_in(self, credential: Mapping[str, Any], device: Device) -> dict[str, Any]:
        """The TokenPair of a new session for a valid assertion; 401 otherwise."""
        claim = self._throttle.claim(self._throttle.counters(ip=device.ip))
        try:
            user, use = self._verify(credential, "credential", device)
        except Refusal as refusal:
            self._refuse(refusal, device)
        clear = [counter.item_key for counter in self._throttle.owner_counters(user)]
        try:
            return self._sessions.start(
                user,
                device,
                clear=clear,
                passkey=use,
                event_type="passkey_login",
                give_back=claim.given_back(but=clear),
            )
        except errors.InvalidCredentials:  # lost a race: a sign-in, a removal, a disable
            raise errors.InvalidCredentials(REFUSED) from None

    def second_factor(
        self, user: UserRecord, credential: Mapping[str, Any], device: Device
    ) -> PasskeyUse | None:
        """A passkey in place of a TOTP code at ``/login``: what the login transaction
        writes, or None if it does not pass (the caller counts the failure)."""
        try:
            _, use = self._verify(credential, "passkey", device, expected=user)
        except Refusal as refusal:
            self._log_refusal(refusal)
            return None
        return use

    def _verify(
        self,
        credential: Mapping[str, Any],
        path: str,
        device: Device,
        *,
        expected: UserRecord | None = None,
    ) -> tuple[UserRecord, PasskeyUse]:
        from chalicelib.crypto import ceremony  # noqa: PLC0415 - lazy: cold start

        assertion = Assertion.of(credential)
        response = ceremony.parse_assertion(assertion, path)
        challenge = ceremony.challenge_of(response)
        now = int(self._clock())
        record = self._store.take_challenge(_digest(challenge), SIGN_IN, now)
        if record is None:
            raise Refusal("unknown, spent or expired challenge", expected)
        try:
            user = self._owner(assertion, record, expected)
        except Refusal:
            # The same reads as a known user's: whether a name has an account (or a
            # passkey) must not show in the DynamoDB work, hence in the timing.
            self._store.get_passkey(NO_USER, b64encode(assertion.credential_id))
            raise
        passkey = self._store.get_passkey(user.id, b64encode(assertion.credential_id))
        if passkey is None:
            raise Refusal("unknown credential", user)
        stored_key = b64decode(passkey.public_key) or b""
        try:
            asserted = self._ceremony().verify_assertion(response, challenge, stored_key)
        except ceremony.Refused as refused:
            raise Refusal(refused.reason, user) from None
        if cloned(passkey.sign_count, asserted.sign_count):
            self._cloned(user, passkey, asserted.sign_count, device)
        use = PasskeyUse(
            user_id=user.id,
            credential_id=passkey.credential_id,
            stored_count=passkey.sign_count,
            new_count=asserted.sign_count,
            at=now,
            backed_up=asserted.backed_up,
        )
        return user, use

    def _owner(
        self, assertion: Assertion, record: ChallengeRecord, expected: UserRecord | None
    ) -> UserRecord:
        """The user the assertion names (``userHandle``), or the one the options were
        asked for; it must be that one when the options named a login."""
        user = expected
        if assertion.user_handle is not None:
            handle = assertion.user_handle.decode("ascii", errors="replace")
            if expected is not None and handle != expected.id:
                raise Refusal("user handle of another user", expected)
            user = user or (self._store.get_user(handle) if is_id(handle) else None)
        elif user is None and record.login_key:
            user = self._accounts.lookup(record.login_key)
        if user is None or user.disabled:
            raise Refusal("no such user, or disabled", user)
        if record.login_key and record.login_key not in (user.username_key, user.email_key):
            raise Refusal("challenge asked for another login", user)
        return user

    def _cloned(
        self, user: UserRecord, passkey: PasskeyRecord, presented: int, device: Device
    ) -> NoReturn:
        observability.count(
            _log,
            "PasskeyCloned",
            {
                "user_id": user.id,
                "passkey": passkey.credential_id[:16],
                "stored_count": passkey.sign_count,
                "presented_count": presented,
            },
        )
        self._accounts.record(self._event(user.id, "passkey_login", device, "cloned"))
        raise Refusal("sign count did not grow: cloned authenticator?", user, "cloned")

    def _log_refusal(self, refusal: Refusal) -> None:
        user_id = refusal.user.id if refusal.user else None
        _log.warning(
            "PasskeyRefused", extra={"fields": {"reason": refusal.reason, "user_id": user_id}}
        )

    def _refuse(self, refusal: Refusal, device: Device) -> NoReturn:
        """The failure stays counted on the client IP (its claim is kept); record it on
        the user's activity (a cloned one is recorded already), and answer the one
        ``invalid_credentials``."""
        self._log_refusal(refusal)
        if refusal.outcome != "cloned":
            # For no known user the write's user check fails and nothing is written,
            # in the same round trip: a name's existence does not show in the work.
            owner = refusal.user.id if refusal.user is not None else NO_USER
            self._accounts.record(self._event(owner, "passkey_login", device, refusal.outcome))
        raise errors.InvalidCredentials(REFUSED)


def _descriptor(passkey: PasskeyRecord) -> dict[str, Any]:
    return {
        "type": "public-key",
        "id": passkey.credential_id,
        "transports": [t for t in passkey.transports.split(",") if t],
    }


def _known_shape(passkey_id: str) -> None:
    """A path id that is not a base64url credential id names nothing: 404, as for an
    id of another user's passkey."""
    decoded = b64decode(passkey_id)
    if not decoded or len(decoded) > 1023 or b64encode(decoded) != passkey_id:
        raise errors.NotFound("No such passkey.")
