"""Wiring: build every service once per container from ``Settings``.

``get()`` builds lazily on first use (never at import, so a cold start pays only for
what a request needs, and tests can ``install`` their own).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import boto3

from chalicelib import store
from chalicelib.accounts import Accounts
from chalicelib.config import Settings
from chalicelib.keys import KeyStore, LocalKeyFile, SecretsManagerKeys
from chalicelib.passwords import PasswordHasher, PasswordPolicy
from chalicelib.sessions import Lifetimes, Sessions
from chalicelib.tokens import AccessTokens


def key_store(settings: Settings) -> KeyStore:
    """Secrets Manager when a secret is configured (deployed), else the local key file."""
    if settings.signing_key_secret:
        session = boto3.session.Session(region_name=settings.region)
        client = session.client("secretsmanager", config=store.CLIENT_CONFIG)
        return SecretsManagerKeys(client, settings.signing_key_secret)
    return LocalKeyFile(settings.key_file)


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: store.Store
    tokens: AccessTokens
    accounts: Accounts
    sessions: Sessions

    @classmethod
    def build(cls, settings: Settings) -> Services:
        clock = time.time
        table = store.Store(store.connect(settings), settings.table_name)
        tokens = AccessTokens(
            key_store(settings),
            issuer=settings.issuer,
            audience=settings.audience,
            lifetime=settings.access_token_seconds,
            clock=clock,
        )
        policy = PasswordPolicy(settings.password_min_length, settings.password_max_length)
        return cls(
            settings=settings,
            store=table,
            tokens=tokens,
            accounts=Accounts(table, PasswordHasher(settings.bcrypt_cost), policy, clock),
            sessions=Sessions(
                table,
                tokens,
                clock,
                Lifetimes(
                    absolute=settings.refresh_token_seconds, idle=settings.session_idle_seconds
                ),
            ),
        )

    def health(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or ``unavailable``."""
        checks = {}
        for name, probe in (("table", self.store.ping), ("keys", lambda: self.tokens.ring)):
            try:
                probe()
                checks[name] = "ok"
            except Exception:  # noqa: BLE001 - any failure means the dependency is down
                checks[name] = "unavailable"
        return checks


class _Container:
    """This container's services, built on first use."""

    services: Services | None = None
    building = threading.Lock()


def get() -> Services:
    if _Container.services is None:
        with _Container.building:  # the local server is threaded: build once, not per thread
            if _Container.services is None:
                _Container.services = Services.build(Settings.from_env())
    return _Container.services


def install(services: Services | None) -> None:
    """Replace the container's services (tests); ``None`` rebuilds from the environment."""
    _Container.services = services
