"""Settings, read once from the environment.

Built lazily by ``wiring.get()`` on the first request, never at import time, so
tests can build their own and a cold start pays for nothing it does not use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def mail_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The mail queue's name: ``MAIL_QUEUE_NAME``, else ``gatehouse-<stage>-mail``.

    ``app.py`` reads it at import, where ``@app.on_sqs_message`` needs it: Chalice
    imports the app with the stage's environment when it packages or deploys.
    """
    env = os.environ if env is None else env
    return env.get("MAIL_QUEUE_NAME") or f"gatehouse-{env.get('GATEHOUSE_STAGE', 'dev')}-mail"


def issuer(env: Mapping[str, str]) -> str:
    """``ISSUER`` without a trailing slash; unset, ``http://localhost:<PORT>`` (the local
    runner's address, 8000 unless ``PORT`` says otherwise). Deployed stages set it to the
    API's URL or custom domain (see docs/operations/configuration.md)."""
    configured = (env.get("ISSUER") or "").strip().rstrip("/")
    return configured or f"http://localhost:{_int(env, 'PORT', 8000)}"


def _pair(env: Mapping[str, str], name: str, default: tuple[int, int]) -> tuple[int, int]:
    """A ``per-hour/per-day`` limit such as ``10/50``."""
    raw = env.get(name)
    if not raw:
        return default
    hour, _, day = raw.partition("/")
    try:
        return int(hour), int(day)
    except ValueError:
        raise ValueError(f"{name} must look like 10/50, got {raw!r}") from None


def _set(env: Mapping[str, str], name: str, default: str) -> frozenset[str]:
    """A comma-separated list, such as ``CORS_ORIGINS``; blanks are skipped."""
    raw = env.get(name) or default
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything that varies between stages. Defaults are the deployed ones."""

    stage: str = "dev"
    table_name: str = "gatehouse"
    region: str = "us-east-1"
    #: DynamoDB endpoint; None means the AWS default for the region.
    dynamodb_endpoint: str | None = None
    #: Seconds to wait for a DynamoDB answer before retrying, then 503: Lambda-sized.
    dynamodb_read_timeout: float = 2.0
    #: The public base URL (``ISSUER``): every token's ``iss``, discovery's ``issuer`` and
    #: the links in mail. Never taken from a request header, which the client controls.
    issuer: str = "http://localhost:8000"
    audience: str = "gatehouse-api"
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    #: A session unused (not refreshed) for this long ends, whatever its absolute lifetime.
    session_idle_seconds: int = 15 * 24 * 3600
    bcrypt_cost: int = 12
    password_min_length: int = 8
    password_max_length: int = 256
    max_body_bytes: int = 16 * 1024
    #: Local stage only: where the signing key ring lives (git-ignored).
    key_file: Path = PROJECT_DIR / ".local" / "signing-keys.json"
    #: Deployed stages: the Secrets Manager secret holding the key ring (see keys.py).
    signing_key_secret: str | None = None
    #: Deployed stages: the secret holding only the public JWKS, which is all the
    #: authorizer may read (``rotate-key`` writes it beside the private ring).
    public_keys_secret: str | None = None
    #: Scheduled key rotation (rotation.py): a key signs this many days; every cache of
    #: the keys (JWKS 300 s, the containers' key caches 300 s) catches up within
    #: ``key_overlap_seconds``, so a new key is published that long before it signs.
    key_rotation_days: int = 30
    key_overlap_seconds: int = 600
    #: Failures allowed per hour/day: per account name, per client IP, and forgot-password
    #: requests per email (see throttle.py).
    throttle_account: tuple[int, int] = (10, 50)
    throttle_ip: tuple[int, int] = (100, 1000)
    throttle_forgot: tuple[int, int] = (5, 20)
    #: Registrations and email changes per client IP, and verification/notice mail per
    #: account and per recipient address, hour/day: every attempt counts.
    throttle_register: tuple[int, int] = (30, 200)
    throttle_mail: tuple[int, int] = (5, 20)
    #: ``sqs`` enqueues each message on ``mail_queue_name`` for the mail handler to send
    #: through SES (the deployed stages); ``ses`` sends through Amazon SES in the
    #: request; ``outbox`` writes files to ``outbox_dir`` (the local stage).
    mail_transport: str = "ses"
    #: The queue ``sqs`` enqueues on; ``mail_queue_url`` saves looking its URL up.
    mail_queue_name: str = "gatehouse-dev-mail"
    mail_queue_url: str | None = None
    mail_sender: str = "no-reply@gatehouse.local"
    outbox_dir: Path = PROJECT_DIR / ".local" / "outbox"
    #: POST /password/forgot never answers sooner than this, known email or not.
    forgot_floor_seconds: float = 0.3
    mfa_issuer: str = "Gatehouse"
    #: The most to-dos one user may hold (then 409 ``todo_limit_reached``).
    todo_limit: int = 5000
    #: Origins whose browser scripts may call the API (CORS); the page itself is
    #: same-origin and needs none.
    cors_origins: frozenset[str] = frozenset()
    #: WebAuthn relying party: its id (a registrable domain, never an IP address), the
    #: origins whose pages may use passkeys, and the name authenticators show.
    webauthn_rp_id: str = "localhost"
    webauthn_origins: frozenset[str] = frozenset({"http://localhost:8000"})
    webauthn_rp_name: str = "Gatehouse"
    #: The most passkeys one user may hold (then 409 ``passkey_limit_reached``).
    passkey_limit: int = 10
    #: Passkey sign-in options one client IP may ask for per hour/day (each writes a
    #: challenge): an open log-in page asks every 4 minutes, 15 an hour, and offices
    #: share an IP, so 300/3000 is 20 pages all hour, 200 page-hours a day.
    passkey_options_limit: tuple[int, int] = (300, 3000)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings; the ``local`` stage defaults to DynamoDB Local on 127.0.0.1.

        DynamoDB Local binds every interface and cannot be told otherwise, so the
        client side always names loopback explicitly (see docs/index.md, "The local stage").
        """
        env = os.environ if env is None else env
        stage = env.get("GATEHOUSE_STAGE", "dev")
        endpoint = env.get("DDB_ENDPOINT") or None
        if endpoint is None and stage == "local":
            endpoint = f"http://127.0.0.1:{_int(env, 'DDB_PORT', 8001)}"
        return cls(
            stage=stage,
            table_name=env.get("TABLE_NAME", f"gatehouse-{stage}"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            dynamodb_endpoint=endpoint,
            dynamodb_read_timeout=_int(env, "DYNAMODB_READ_TIMEOUT_MS", 2000) / 1000,
            issuer=issuer(env),
            audience=env.get("TOKEN_AUDIENCE", "gatehouse-api"),
            access_token_seconds=_int(env, "ACCESS_TOKEN_SECONDS", 15 * 60),
            refresh_token_seconds=_int(env, "REFRESH_TOKEN_SECONDS", 30 * 24 * 3600),
            session_idle_seconds=_int(env, "SESSION_IDLE_SECONDS", 15 * 24 * 3600),
            bcrypt_cost=_int(env, "BCRYPT_COST", 12),
            password_min_length=_int(env, "PASSWORD_MIN_LENGTH", 8),
            key_file=Path(env.get("KEY_FILE") or PROJECT_DIR / ".local" / "signing-keys.json"),
            signing_key_secret=env.get("SIGNING_KEY_SECRET") or None,
            public_keys_secret=env.get("PUBLIC_KEYS_SECRET") or None,
            key_rotation_days=_int(env, "KEY_ROTATION_DAYS", 30),
            key_overlap_seconds=_int(env, "KEY_OVERLAP_SECONDS", 600),
            throttle_account=_pair(env, "THROTTLE_ACCOUNT", (10, 50)),
            throttle_ip=_pair(env, "THROTTLE_IP", (100, 1000)),
            throttle_forgot=_pair(env, "THROTTLE_FORGOT", (5, 20)),
            throttle_register=_pair(env, "THROTTLE_REGISTER", (30, 200)),
            throttle_mail=_pair(env, "THROTTLE_MAIL", (5, 20)),
            mail_transport=env.get("MAIL_TRANSPORT") or ("outbox" if stage == "local" else "ses"),
            mail_sender=env.get("MAIL_SENDER", "no-reply@gatehouse.local"),
            mail_queue_name=mail_queue_name(env),
            mail_queue_url=env.get("MAIL_QUEUE_URL") or None,
            outbox_dir=Path(env.get("OUTBOX_DIR") or PROJECT_DIR / ".local" / "outbox"),
            forgot_floor_seconds=_int(env, "FORGOT_FLOOR_MS", 300) / 1000,
            mfa_issuer=env.get("MFA_ISSUER", "Gatehouse"),
            todo_limit=_int(env, "TODO_LIMIT", 5000),
            cors_origins=_set(env, "CORS_ORIGINS", ""),
            webauthn_rp_id=env.get("WEBAUTHN_RP_ID") or "localhost",
            webauthn_origins=_set(env, "WEBAUTHN_ORIGINS", "http://localhost:8000"),
            webauthn_rp_name=env.get("WEBAUTHN_RP_NAME") or "Gatehouse",
            passkey_limit=_int(env, "PASSKEY_LIMIT", 10),
            passkey_options_limit=_pair(env, "PASSKEY_OPTIONS_LIMIT", (300, 3000)),
        )
