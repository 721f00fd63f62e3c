"""OAuth clients: registration by the operator, exact redirect URIs, secrets as hashes.

A confidential client gets a 256-bit random secret, shown once; the table keeps only its
SHA-256 (a secret that strong needs no slow hash, as with refresh tokens), compared in
constant time. A public client (a SPA, a mobile app) has no secret and must use PKCE,
which the authorization endpoint requires of every client anyway.

Redirect URIs are compared character for character (RFC 9700 2.1: no patterns, no
prefixes). Registered ones must be absolute, without a fragment (RFC 6749 3.1.2), and
``https``, or ``http`` on a loopback host (RFC 8252 7.3), or a private-use scheme for a
native app named like a reversed domain (``com.example.app:/callback``, RFC 8252 7.1).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib.crypto.tokens import is_id, new_id
from chalicelib.platform import errors, observability
from chalicelib.store.items import ClientRecord
from chalicelib.store.table import Store

AUTHORIZATION_CODE = "authorization_code"
# A grant type's name, not a secret.
REFRESH_TOKEN = "refresh_token"  # noqa: S105  # nosec B105
CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS)
DEFAULT_GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN)
#: A display name's longest form (the consent screen shows it).
MAX_NAME_LENGTH = 100
MAX_URI_LENGTH = 2000
MAX_URIS = 20
_log = logging.getLogger("gatehouse")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
#: A DNS name or an IP literal (``urlsplit`` lowercases the host and strips IPv6 brackets).
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


@dataclass(frozen=True)
class ClientRegistration:
    """What the operator registers: ``clients create`` in scripts/admin.py."""

    name: str
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    public: bool = False
    grant_types: tuple[str, ...] = DEFAULT_GRANT_TYPES


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """256 random bits, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def check_redirect_uri(uri: str, field: str) -> str:
    """``uri`` if it may be registered as a redirect target; else a ``ValidationError``."""

    def refuse(message: str) -> errors.ValidationError:
        return errors.ValidationError.of_field(field, "invalid_uri", f"{uri!r}: {message}")

    if not uri or len(uri) > MAX_URI_LENGTH or any(c.isspace() for c in uri):
        raise refuse(f"must be 1 to {MAX_URI_LENGTH} characters with no spaces")
    try:
        parts = urlsplit(uri)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is no number
    except ValueError:
        raise refuse("is not a URI") from None
    if parts.fragment or "#" in uri:
        raise refuse("must not have a fragment")
    if parts.username is not None:
        raise refuse("must not hold credentials")
    if host is not None and not _HOST.fullmatch(host):
        raise refuse("must name one host: no patterns")
    if parts.scheme == "https" and host:
        return uri
    if parts.scheme == "http" and host in _LOOPBACK:
        return uri
    if parts.scheme not in ("http", "https") and "." in parts.scheme and parts.path:
        return uri  # a native app's private-use scheme (reversed domain)
    raise refuse("must be https, http on a loopback host, or a reversed-domain app scheme")


def _grants(grant_types: Iterable[str], public: bool, redirect_uris: tuple[str, ...]) -> str:
    chosen = tuple(dict.fromkeys(grant_types))
    unknown = [g for g in chosen if g not in GRANT_TYPES]
    if unknown or not chosen:
        raise errors.ValidationError.of_field(
            "grant_types", "invalid", f"choose from {', '.join(GRANT_TYPES)}"
        )
    if public and CLIENT_CREDENTIALS in chosen:
        raise errors.ValidationError.of_field(
            "grant_types", "invalid", "a public client has no secret to use client_credentials"
        )
    if REFRESH_TOKEN in chosen and AUTHORIZATION_CODE not in chosen:
        raise errors.ValidationError.of_field(
            "grant_types", "invalid", "refresh_token comes with authorization_code"
        )
    if AUTHORIZATION_CODE in chosen and not redirect_uris:
        raise errors.ValidationError.of_field(
            "redirect_uris", "required", "authorization_code needs at least one redirect URI"
        )
    return " ".join(chosen)


def _audit(client_id: str, change: str, **fields: Any) -> None:
    """One audit line (and ``OAuthClientChanged`` metric) per change to a client: never
    the secret or its hash."""
    observability.count(
        _log, "OAuthClientChanged", {"client_id": client_id, "change": change, **fields}
    )


def public_client(client: ClientRecord) -> dict[str, Any]:
    """A client as the operator's commands print it: never its secret or the hash."""
    return {
        "client_id": client.id,
        "name": client.name,
        "public": client.public,
        "redirect_uris": client.redirect_uris.split(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris.split(),
        "grant_types": client.grant_types.split(),
        "token_endpoint_auth_method": "none" if client.public else "client_secret_basic",
        "created_at": client.created_at,
        "secret_rotated_at": client.secret_rotated_at or None,
    }


class Clients:
    """The registered clients: create, list, delete, rotate a secret, authenticate."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def register(self, registration: ClientRegistration) -> tuple[ClientRecord, str | None]:
        """A new client and its secret (None for a public client), shown only now."""
        name = registration.name.strip()
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise errors.ValidationError.of_field(
                "name", "invalid", f"1 to {MAX_NAME_LENGTH} printable characters"
            )
        redirects = self._uris(registration.redirect_uris, "redirect_uris")
        after_logout = self._uris(
            registration.post_logout_redirect_uris, "post_logout_redirect_uris"
        )
        grants = _grants(registration.grant_types, registration.public, redirects)
        secret = None if registration.public else new_secret()
        client = ClientRecord(
            id=new_id(),
            name=name,
            secret_hash=hash_secret(secret) if secret else None,
            redirect_uris=" ".join(redirects),
            post_logout_redirect_uris=" ".join(after_logout),
            grant_types=grants,
            public=registration.public,
            created_at=int(self._clock()),
            secret_rotated_at=0,
        )
        if not self._store.put_client(client):
            raise errors.GatehouseError("A client with that id already exists.")
        _audit(client.id, "created", name=client.name, grant_types=grants, public=client.public)
        return client, secret

    @staticmethod
    def _uris(uris: Iterable[str], field: str) -> tuple[str, ...]:
        checked = tuple(dict.fromkeys(check_redirect_uri(u, field) for u in uris))
        if len(checked) > MAX_URIS:
            raise errors.ValidationError.of_field(field, "too_many", f"at most {MAX_URIS}")
        return checked

    def list(self) -> list[ClientRecord]:
        return sorted(self._store.list_clients(), key=lambda c: (c.created_at, c.id))

    def get(self, client_id: str) -> ClientRecord | None:
        """The client, or None for an unknown id (a malformed one costs no read)."""
        return self._store.get_client(client_id) if is_id(client_id) else None

    def delete(self, client_id: str) -> None:
        if not is_id(client_id) or not self._store.delete_client(client_id):
            raise errors.NotFound("No such client.")
        _audit(client_id, "deleted")

    def rotate_secret(self, client_id: str) -> str:
        """A new secret for a confidential client; the old one stops working at once."""
        secret = new_secret()
        rotated = is_id(client_id) and self._store.set_client_secret(
            client_id, hash_secret(secret), int(self._clock())
        )
        if not rotated:
            raise errors.NotFound("No such confidential client.")
        _audit(client_id, "secret_rotated")
        return secret

    @staticmethod
    def secret_matches(client: ClientRecord, secret: str) -> bool:
        """Whether ``secret`` is the client's, in constant time; never for a public one."""
        if client.public or not client.secret_hash:
            return False
        return hmac.compare_digest(client.secret_hash, hash_secret(secret))
