"""The table's item layout: records, their keys, and their DynamoDB encoding.

One table, ``pk`` / ``sk`` string keys, TTL on ``expires_at``:

| item      | pk                 | sk                    | notes                                |
|-----------|--------------------|-----------------------|--------------------------------------|
| user      | ``USER#<id>``      | ``PROFILE``           | password hash, profile, flags        |
| username  | ``USERNAME#<key>`` | ``USERNAME``          | guard: normalised username -> owner  |
| email     | ``EMAIL#<key>``    | ``EMAIL``             | guard: normalised email -> owner     |
| session   | ``USER#<id>``      | ``SESSION#<sid>``     | live refresh-token hash; TTL         |
| spent     | ``USER#<id>``      | ``SPENT#<hash>``      | a spent refresh token's session; TTL |
| event     | ``USER#<id>``      | ``EVENT#<at>#<ns>#<rand>`` | activity; TTL                   |
| counter   | ``THROTTLE#<limit>#<hash>#<window>`` | ``THROTTLE`` | failures in a window; TTL  |
| one-time  | ``TOKEN#<hash>``   | ``TOKEN``             | reset / verification token; TTL      |
| passkey   | ``USER#<id>``      | ``PASSKEY#<hash>``    | a WebAuthn credential (passkeys.py)  |
| count     | ``USER#<id>``      | ``PASSKEYCOUNT``      | how many passkeys the user holds     |
| challenge | ``CHALLENGE#<hash>`` | ``CHALLENGE``       | a WebAuthn challenge, single use; TTL |
| client    | ``CLIENTS``        | ``CLIENT#<id>``       | an OAuth client (clients.py)         |
| request   | ``OAUTHREQ#<hash>`` | ``OAUTHREQ``         | a pending authorization request; TTL |
| code      | ``OAUTHCODE#<hash>`` | ``OAUTHCODE``       | an authorization code, single use; TTL |
| consent   | ``USER#<id>``      | ``CONSENT#<client>``  | scopes the user allowed an app       |

Everything a user owns shares the user's partition, so one Query finds it all.
Records are flat dataclasses of ``str``, ``str | None``, ``int`` and ``bool`` fields, and
``encode``/``decode`` map them to DynamoDB attribute values by those types.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, fields
from typing import Any, TypeVar

TTL_ATTRIBUTE = "expires_at"
#: How long activity events are kept before DynamoDB's TTL reaps them.
EVENT_RETENTION_SECONDS = 90 * 24 * 3600

Key = dict[str, dict[str, str]]
Item = dict[str, Any]


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    username_key: str
    email: str | None
    email_key: str | None
    display_name: str | None
    password_hash: str
    email_verified: bool
    mfa_enabled: bool
    disabled: bool
    created_at: int
    #: TOTP secret, encrypted (see mfa.py); ``mfa_pending`` until a code confirms it.
    mfa_secret: str | None = None
    mfa_pending: str | None = None
    #: The last TOTP time step accepted: a code cannot be replayed within its window.
    mfa_last_step: int = 0
    #: SHA-256 hashes of the unused recovery codes, comma-separated.
    recovery_hashes: str | None = None


@dataclass(frozen=True)
class SecondFactor:
    """What a login spends besides the password: a TOTP time step, or a recovery code
    (the hashes left before and after it is struck off). Neither can be used twice."""

    totp_step: int | None = None
    recovery_before: str | None = None
    recovery_after: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    """A session (a refresh-token family). ``expires_at`` is the sooner of the idle
    deadline and ``absolute_expires_at``; TTL reaps the item after it."""

    id: str
    user_id: str
    username: str
    refresh_hash: str
    created_at: int
    last_used_at: int
    expires_at: int
    absolute_expires_at: int
    user_agent: str
    ip: str
    #: An OAuth client's session (opened by a code exchange): the client and the granted
    #: scope; empty for a first-party session.
    client_id: str = ""
    scope: str = ""
    #: When the user last proved who they are (OIDC ``auth_time``); 0: at ``created_at``.
    auth_time: int = 0


@dataclass(frozen=True)
class ActivityEvent:
    user_id: str
    type: str
    outcome: str
    at: int
    ip: str
    user_agent: str


@dataclass(frozen=True)
class OneTimeRecord:
    """A password-reset or email-verification token, stored under its hash only."""

    purpose: str
    user_id: str
    email_key: str
    expires_at: int


@dataclass(frozen=True)
class PasskeyRecord:
    """A WebAuthn credential (see passkeys.py). Binary values are base64url;
    ``transports`` is comma-joined; ``last_used_at`` is 0 until the first sign-in."""

    user_id: str
    credential_id: str
    public_key: str
    sign_count: int
    transports: str
    name: str
    created_at: int
    last_used_at: int
    backed_up: bool


@dataclass(frozen=True)
class PasskeyUse:
    """What a passkey sign-in writes in the transaction that opens the session: the new
    sign count, conditional on the stored one (two racing assertions cannot both win)."""

    user_id: str
    credential_id: str
    stored_count: int
    new_count: int
    at: int
    backed_up: bool


@dataclass(frozen=True)
class ChallengeRecord:
    """A WebAuthn challenge, stored under its SHA-256 only: ``purpose`` is
    ``passkey_enrol`` (bound to ``user_id``) or ``passkey_login`` (bound to the
    normalised login name it was asked for in ``login_key``, or to nobody)."""

    purpose: str
    user_id: str
    login_key: str
    expires_at: int


@dataclass(frozen=True)
class ClientRecord:
    """An OAuth client registered by the operator (see clients.py). ``secret_hash`` is the
    SHA-256 of its secret (None for a public client); the URI and grant lists are
    space-separated (a URI holds no space), each redirect URI matched exactly."""

    id: str
    name: str
    secret_hash: str | None
    redirect_uris: str
    post_logout_redirect_uris: str
    grant_types: str
    public: bool
    created_at: int
    secret_rotated_at: int


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request waiting for the user's decision (see
    oauth/provider.py), stored under the SHA-256 of its ``request_id``. ``prompt`` and
    ``max_age`` (-1: none) are kept for the sign-in page; the rest binds the code."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str
    nonce: str
    code_challenge: str
    prompt: str
    max_age: int
    expires_at: int


@dataclass(frozen=True)
class AuthorizationCode:
    """An authorization code (stored under its SHA-256): what it was issued for, the
    session id its exchange opens (so a second use can end that session), and the user
    claims the ID token carries, read when the user decided. ``spent_at`` is 0 until the
    one exchange that wins (grants.py)."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    user_id: str
    username: str
    email: str
    email_verified: bool
    display_name: str
    auth_time: int
    session_id: str
    expires_at: int
    spent_at: int = 0
    #: Set by a second presentation: the first one's session may no longer open.
    reused: bool = False


@dataclass(frozen=True)
class ConsentRecord:
    """The scopes a user allowed an OAuth client, in the user's partition (a connected
    app); removed by "Remove access", with every session of that client."""

    user_id: str
    client_id: str
    scope: str
    granted_at: int


@dataclass(frozen=True)
class CounterChange:
    """One change to a throttle counter (``throttle_key``): add ``step`` (1 claims an
    attempt, -1 gives it back, 0 only looks) if the count is below ``below`` (None: no
    condition); the item is created on first use and reaped by TTL at ``window_end``."""

    key: Key
    window_end: int
    step: int = 1
    below: int | None = None


def user_key(user_id: str) -> Key:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}}


def session_key(user_id: str, session_id: str) -> Key:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"SESSION#{session_id}"}}


def spent_key(user_id: str, refresh_hash: str) -> Key:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"SPENT#{refresh_hash}"}}


def event_key(event: ActivityEvent) -> Key:
    """Sorted by time: the event's second (zero-padded), then the nanosecond the item is
    written, so events within one second keep their order; a random suffix makes it unique."""
    sk = f"EVENT#{event.at:012d}#{time.time_ns():020d}#{secrets.token_hex(4)}"
    return {"pk": {"S": f"USER#{event.user_id}"}, "sk": {"S": sk}}


def guard_key(kind: str, value: str) -> Key:
    return {"pk": {"S": f"{kind}#{value}"}, "sk": {"S": kind}}


def throttle_key(limit: str, key_hash: str, window_start: int) -> Key:
    return {"pk": {"S": f"THROTTLE#{limit}#{key_hash}#{window_start}"}, "sk": {"S": "THROTTLE"}}


def one_time_key(token_hash: str) -> Key:
    return {"pk": {"S": f"TOKEN#{token_hash}"}, "sk": {"S": "TOKEN"}}


def passkey_key(user_id: str, credential_id: str) -> Key:
    """A credential id may be 1,023 bytes, more than a sort key holds: keyed by its hash."""
    digest = hashlib.sha256(credential_id.encode("ascii")).hexdigest()
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"PASSKEY#{digest}"}}


def passkey_count_key(user_id: str) -> Key:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PASSKEYCOUNT"}}


def challenge_key(challenge_hash: str) -> Key:
    return {"pk": {"S": f"CHALLENGE#{challenge_hash}"}, "sk": {"S": "CHALLENGE"}}


def authorization_request_key(request_hash: str) -> Key:
    return {"pk": {"S": f"OAUTHREQ#{request_hash}"}, "sk": {"S": "OAUTHREQ"}}


def authorization_code_key(code_hash: str) -> Key:
    return {"pk": {"S": f"OAUTHCODE#{code_hash}"}, "sk": {"S": "OAUTHCODE"}}


def consent_key(user_id: str, client_id: str) -> Key:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"CONSENT#{client_id}"}}


#: The one partition of the client records: the operator lists them with one Query.
CLIENTS_PARTITION = "CLIENTS"


def client_key(client_id: str) -> Key:
    return {"pk": {"S": CLIENTS_PARTITION}, "sk": {"S": f"CLIENT#{client_id}"}}


def user_partition(user_id: str) -> str:
    return f"USER#{user_id}"


R = TypeVar("R")


def encode(record: object, kind: str) -> Item:
    """A record's attributes (without its key), tagged with its ``type``."""
    item: Item = {"type": {"S": kind}}
    for field in fields(record):  # type: ignore[arg-type]
        value = getattr(record, field.name)
        if value is None:
            item[field.name] = {"NULL": True}
        elif isinstance(value, bool):
            item[field.name] = {"BOOL": value}
        elif isinstance(value, int):
            item[field.name] = {"N": str(value)}
        else:
            item[field.name] = {"S": str(value)}
    return item


def decode(cls: type[R], item: Item) -> R:
    """Rebuild a record from an item, by each field's declared type."""
    values: dict[str, Any] = {}
    for field in fields(cls):  # type: ignore[arg-type]
        attribute = item.get(field.name, {})
        if field.type == "bool":
            values[field.name] = bool(attribute.get("BOOL", False))
        elif field.type == "int":
            values[field.name] = int(attribute.get("N", "0"))
        elif field.type == "str | None":
            values[field.name] = attribute.get("S")
        else:
            values[field.name] = attribute.get("S", "")
    return cls(**values)
