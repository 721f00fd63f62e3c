"""Wiring: build every service once per container from ``Settings``.

``get()`` builds lazily on first use (never at import, so a cold start pays only for
what a request needs, and tests can ``install`` their own).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from chalicelib.accounts.login import Login
from chalicelib.accounts.mfa import Mfa, SecretBox, Totp
from chalicelib.accounts.passkeys import PasskeyPolicy, Passkeys
from chalicelib.accounts.recovery import Recovery, RecoveryTimes
from chalicelib.accounts.selfservice import SelfService
from chalicelib.accounts.sessions import Lifetimes, Sessions
from chalicelib.accounts.signup import Signup
from chalicelib.accounts.throttle import Policy, Throttle, pair
from chalicelib.accounts.users import Accounts
from chalicelib.crypto.credentials import RelyingParty
from chalicelib.crypto.keys import (
    KeyStores,
    LocalKeyFile,
    SecretsManagerKeys,
    SecretsManagerPublicKeys,
)
from chalicelib.crypto.passwords import PasswordHasher, PasswordPolicy
from chalicelib.crypto.rotation import Rotation, RotationPolicy
from chalicelib.crypto.tokens import AccessTokens
from chalicelib.oauth.apps import ConnectedApps
from chalicelib.oauth.browser import BrowserSignIn
from chalicelib.oauth.clients import Clients
from chalicelib.oauth.tokens import ClientTokens
from chalicelib.oauth.userinfo import UserInfo
from chalicelib.platform.config import Settings
from chalicelib.platform.mail import LocalOutbox, Mailer, SesMailer, SqsMailer
from chalicelib.store.table import CLIENT_CONFIG, Store, connect
from chalicelib.store.todos import TodoStore

if TYPE_CHECKING:
    from chalicelib.oauth.provider import Provider
from chalicelib.todos.lists import Todos


def key_store(settings: Settings) -> KeyStores:
    """Secrets Manager when the secrets are configured (deployed): the private ring in
    ``SIGNING_KEY_SECRET``, the verifying keys in ``PUBLIC_KEYS_SECRET``; else the local
    key file, whose public part verifies. Builds clients only: nothing is read yet."""
    if not settings.signing_key_secret:
        return KeyStores(LocalKeyFile(settings.key_file))
    session = boto3.session.Session(region_name=settings.region)
    client = session.client("secretsmanager", config=CLIENT_CONFIG)
    published = settings.public_keys_secret
    return KeyStores(
        SecretsManagerKeys(client, settings.signing_key_secret),
        SecretsManagerPublicKeys(client, published) if published else None,
    )


def rotation(settings: Settings) -> Rotation:
    """The key ring's scheduled rotation for the stage (the schedule and ``rotate-due``):
    it needs the key stores only, no table."""
    policy = RotationPolicy(
        period=settings.key_rotation_days * 86400,
        overlap=settings.key_overlap_seconds,
        token_lifetime=settings.access_token_seconds,
    )
    return Rotation(key_store(settings), policy, time.time)


MAIL_TRANSPORTS = ("sqs", "ses", "outbox")


def ses_mailer(settings: Settings) -> SesMailer:
    """Sends through SES from the stage's sender: the mail queue's handler uses it."""
    session = boto3.session.Session(region_name=settings.region)
    return SesMailer(session.client("ses", config=CLIENT_CONFIG), settings.mail_sender)


def mailer(settings: Settings) -> Mailer:
    """The mail queue when deployed (``sqs``), SES in the request (``ses``), the local
    outbox directory for the local stage and tests (``outbox``)."""
    if settings.mail_transport == "outbox":
        return LocalOutbox(settings.outbox_dir, settings.mail_sender)
    if settings.mail_transport == "ses":
        return ses_mailer(settings)
    if settings.mail_transport == "sqs":
        session = boto3.session.Session(region_name=settings.region)
        client = session.client("sqs", config=CLIENT_CONFIG)
        return SqsMailer(client, settings.mail_queue_name, settings.mail_queue_url)
    raise ValueError(
        f"MAIL_TRANSPORT must be one of {', '.join(MAIL_TRANSPORTS)}, "
        f"got {settings.mail_transport!r}"
    )


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    tokens: AccessTokens
    accounts: Accounts
    sessions: Sessions
    throttle: Throttle
    login: Login
    mfa: Mfa
    recovery: Recovery
    me: SelfService
    signup: Signup
    todos: Todos
    passkeys: Passkeys
    clients: Clients

    @classmethod
    def build(cls, settings: Settings) -> Services:
        clock = time.time
        table = Store(connect(settings), settings.table_name)
        keys = key_store(settings)
        tokens = AccessTokens(
            keys.signing,
            keys.verifying,
            issuer=settings.issuer,
            audience=settings.audience,
            lifetime=settings.access_token_seconds,
            clock=clock,
        )
        policy = PasswordPolicy(settings.password_min_length, settings.password_max_length)
        hasher = PasswordHasher(settings.bcrypt_cost)
        accounts = Accounts(table, hasher, policy, clock)
        lifetimes = Lifetimes(
            absolute=settings.refresh_token_seconds, idle=settings.session_idle_seconds
        )
        sessions = Sessions(table, tokens, clock, lifetimes)
        throttle = Throttle(
            table,
            Policy(
                account=pair("account", *settings.throttle_account),
                ip=pair("ip", *settings.throttle_ip),
                forgot=pair("forgot", *settings.throttle_forgot),
                options=pair("options", *settings.passkey_options_limit),
                register=pair("register", *settings.throttle_register),
                mail=pair("mail", *settings.throttle_mail),
            ),
            clock,
        )
        totp = Totp(SecretBox(tokens.secret_key), settings.mfa_issuer, clock)
        passkeys = Passkeys(
            table,
            accounts,
            sessions,
            throttle,
            policy=PasskeyPolicy(
                RelyingParty(
                    settings.webauthn_rp_id, settings.webauthn_rp_name, settings.webauthn_origins
                ),
                limit=settings.passkey_limit,
            ),
            clock=clock,
        )
        login = Login(
            accounts, hasher, throttle, totp=totp, sessions=sessions, passkeys=passkeys, clock=clock
        )
        mfa = Mfa(table, totp)
        recovery = Recovery(
            table,
            accounts,
            policy,
            throttle,
            mailer=mailer(settings),
            clock=clock,
            times=RecoveryTimes(forgot_floor_seconds=settings.forgot_floor_seconds),
            links=settings.issuer,
        )
        me = SelfService(
            accounts,
            login,
            sessions,
            mfa,
            recovery=recovery,
            throttle=throttle,
            passkeys=passkeys,
            clock=clock,
        )
        return cls(
            settings=settings,
            store=table,
            tokens=tokens,
            accounts=accounts,
            sessions=sessions,
            throttle=throttle,
            login=login,
            mfa=mfa,
            recovery=recovery,
            me=me,
            signup=Signup(accounts, throttle, recovery),
            todos=Todos(
                TodoStore(table.client, settings.table_name),
                tokens.secret_key,
                clock,
                max_per_user=settings.todo_limit,
            ),
            passkeys=passkeys,
            clients=Clients(table, clock),
        )

    @functools.cached_property
    def oauth(self) -> Provider:
        """The OpenID Provider, built on the first OAuth request: it imports authlib,
        which no other route (and no authorizer call) pays for."""
        return self.provider_with(time.time)

    def provider_with(self, clock: Callable[[], float]) -> Provider:
        """A provider on these services with its own clock (``oauth`` uses the real one)."""
        from chalicelib.oauth.provider import Provider  # noqa: PLC0415 - lazy: cold start

        return Provider(
            self.store,
            browser=self.browser,
            clients=self.clients,
            accounts=self.accounts,
            sessions=self.sessions,
            tokens=self.client_tokens,
            clock=clock,
        )

    @functools.cached_property
    def client_tokens(self) -> ClientTokens:
        """OAuth clients' tokens (userinfo verifies with these alone, without authlib)."""
        return ClientTokens(self.tokens, time.time)

    @functools.cached_property
    def browser(self) -> BrowserSignIn:
        return BrowserSignIn(self.store, self.tokens.secret_key, time.time)

    @functools.cached_property
    def apps(self) -> ConnectedApps:
        return ConnectedApps(self.store, self.clients, time.time)

    @functools.cached_property
    def userinfo(self) -> UserInfo:
        return UserInfo(self.store, self.client_tokens, time.time)

    def health(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or ``unavailable``."""
        checks = {}
        # Both key sources: the API signs with the private ring and verifies with the
        # public keys, so either one down is a 503 for it.
        keys = (self.tokens.signing, self.tokens.verifying)
        for name, probe in (("table", self.store.ping), ("keys", lambda: [k.ring for k in keys])):
            try:
                probe()
                checks[name] = "ok"
            except Exception:  # noqa: BLE001 - any failure means the dependency is down
                checks[name] = "unavailable"
        return checks


class _Container:
    """This container's services, built on first use."""

    services: Services | None = None
    delivery: Mailer | None = None
    building = threading.Lock()


def delivery() -> Mailer:
    """What the mail queue's handler sends through: SES, built once per container (the
    handler needs no table or keys, so it does not build ``Services``)."""
    if _Container.delivery is None:
        _Container.delivery = ses_mailer(Settings.from_env())
    return _Container.delivery


def install_delivery(mailer: Mailer | None) -> None:
    """Replace the mail handler's mailer (tests); ``None`` rebuilds from the environment."""
    _Container.delivery = mailer


def get() -> Services:
    if _Container.services is None:
        with _Container.building:  # the local server is threaded: build once, not per thread
            if _Container.services is None:
                _Container.services = Services.build(Settings.from_env())
    return _Container.services


def install(services: Services | None) -> None:
    """Replace the container's services (tests); ``None`` rebuilds from the environment."""
    _Container.services = services
