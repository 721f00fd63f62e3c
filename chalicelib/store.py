"""The one DynamoDB table: key layout, item shapes, conditional writes, transactions.

Only this module knows keys and condition expressions. Items (``pk`` / ``sk``):

| item      | pk                 | sk             | notes                                  |
|-----------|--------------------|----------------|----------------------------------------|
| user      | ``USER#<id>``      | ``PROFILE``    | password hash, profile, flags          |
| username  | ``USERNAME#<key>`` | ``USERNAME``   | guard: normalised username -> user id  |
| email     | ``EMAIL#<key>``    | ``EMAIL``      | guard: normalised email -> user id     |
| session   | ``USER#<id>``      | ``SESSION#<sid>`` | refresh-token hash; TTL ``expires_at`` |

Guards are written with the user in one transaction under ``attribute_not_exists``, so
uniqueness holds under any concurrency with no read-then-write. Every AWS failure that
is not the caller's fault becomes ``ServiceUnavailable`` (503 + Retry-After).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from chalicelib.config import Settings

TTL_ATTRIBUTE = "expires_at"
#: Attempts at a transaction that lost a race (TransactionConflict) before a 503.
_TRANSACTION_ATTEMPTS = 5
#: Lambda-sized timeouts: fail fast into a 503 rather than hang the request.
_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"max_attempts": 3, "mode": "standard"},
)


def connect(settings: Settings) -> DynamoDBClient:
    """A DynamoDB client for the stage; DynamoDB Local needs (any) credentials."""
    local = settings.dynamodb_endpoint is not None
    session = boto3.session.Session(
        aws_access_key_id="local" if local else None,
        aws_secret_access_key="local" if local else None,
        region_name=settings.region,
    )
    return session.client(
        "dynamodb", endpoint_url=settings.dynamodb_endpoint, config=_CLIENT_CONFIG
    )


# ------------------------------------------------------------------ records


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


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user_id: str
    username: str
    refresh_hash: str
    created_at: int
    last_used_at: int
    expires_at: int
    user_agent: str
    ip: str


def _user_key(user_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}}


def _session_key(user_id: str, session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"SESSION#{session_id}"}}


def _guard_key(kind: str, value: str) -> dict[str, Any]:
    return {"pk": {"S": f"{kind}#{value}"}, "sk": {"S": kind}}


def _s(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _get_s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {})
    return value.get("S") if isinstance(value, dict) else None


def _get_n(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _get_bool(item: dict[str, Any], name: str) -> bool:
    return bool(item.get(name, {}).get("BOOL", False))


def _user_item(user: UserRecord) -> dict[str, Any]:
    return {
        **_user_key(user.id),
        "type": {"S": "user"},
        "id": {"S": user.id},
        "username": {"S": user.username},
        "username_key": {"S": user.username_key},
        "email": _s(user.email),
        "email_key": _s(user.email_key),
        "display_name": _s(user.display_name),
        "password_hash": {"S": user.password_hash},
        "email_verified": {"BOOL": user.email_verified},
        "mfa_enabled": {"BOOL": user.mfa_enabled},
        "disabled": {"BOOL": user.disabled},
        "created_at": _n(user.created_at),
    }


def _user_from(item: dict[str, Any]) -> UserRecord:
    return UserRecord(
        id=_get_s(item, "id") or "",
        username=_get_s(item, "username") or "",
        username_key=_get_s(item, "username_key") or "",
        email=_get_s(item, "email"),
        email_key=_get_s(item, "email_key"),
        display_name=_get_s(item, "display_name"),
        password_hash=_get_s(item, "password_hash") or "",
        email_verified=_get_bool(item, "email_verified"),
        mfa_enabled=_get_bool(item, "mfa_enabled"),
        disabled=_get_bool(item, "disabled"),
        created_at=_get_n(item, "created_at"),
    )


def _session_item(session: SessionRecord) -> dict[str, Any]:
    return {
        **_session_key(session.user_id, session.id),
        "type": {"S": "session"},
        "id": {"S": session.id},
        "user_id": {"S": session.user_id},
        "username": {"S": session.username},
        "refresh_hash": {"S": session.refresh_hash},
        "created_at": _n(session.created_at),
        "last_used_at": _n(session.last_used_at),
        TTL_ATTRIBUTE: _n(session.expires_at),
        "user_agent": {"S": session.user_agent},
        "ip": {"S": session.ip},
    }


def _session_from(item: dict[str, Any]) -> SessionRecord:
    return SessionRecord(
        id=_get_s(item, "id") or "",
        user_id=_get_s(item, "user_id") or "",
        username=_get_s(item, "username") or "",
        refresh_hash=_get_s(item, "refresh_hash") or "",
        created_at=_get_n(item, "created_at"),
        last_used_at=_get_n(item, "last_used_at"),
        expires_at=_get_n(item, TTL_ATTRIBUTE),
        user_agent=_get_s(item, "user_agent") or "",
        ip=_get_s(item, "ip") or "",
    )


# ------------------------------------------------------------------ the store


@contextmanager
def _aws_call() -> Iterator[None]:
    """Turn every AWS-side failure into a 503; conditional failures are handled by callers."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            raise
        raise errors.ServiceUnavailable() from error
    except BotoCoreError as error:
        raise errors.ServiceUnavailable() from error


class Store:
    """Typed access to the table; returns records, raises domain errors."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def ping(self) -> None:
        """One cheap read that proves the table answers (for ``/health``)."""
        with _aws_call():
            self._client.get_item(TableName=self.table_name, Key=_guard_key("HEALTH", "-"))

    def create_user(self, user: UserRecord) -> None:
        """Write the user and its guard items at once; raise ``UsernameTaken``/``EmailTaken``."""
        new_item = "attribute_not_exists(pk)"
        owner = {"user_id": {"S": user.id}, "type": {"S": "guard"}}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": _user_item(user),
                    "ConditionExpression": new_item,
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {**_guard_key("USERNAME", user.username_key), **owner},
                    "ConditionExpression": new_item,
                }
            },
        ]
        if user.email_key:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**_guard_key("EMAIL", user.email_key), **owner},
                        "ConditionExpression": new_item,
                    }
                }
            )
        failures = (errors.GatehouseError(), errors.UsernameTaken(), errors.EmailTaken())
        self._transact(items, failures)

    def _transact(
        self, items: list[dict[str, Any]], failures: tuple[errors.GatehouseError, ...]
    ) -> None:
        """Run a transaction; a failed condition on item i raises ``failures[i]``.

        A ``TransactionConflict`` means another transaction held an item; retry, and the
        loser then sees the winner's write as a failed condition.
        """
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                with _aws_call():
                    self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return
            except ClientError as error:
                reasons = error.response.get("CancellationReasons", [])
                codes = [r.get("Code", "None") for r in reasons]
                for index, code in enumerate(codes):
                    if code == "ConditionalCheckFailed":
                        raise failures[index] from None
                if "TransactionConflict" not in codes:
                    raise errors.ServiceUnavailable() from error
                time.sleep(0.01 * (2**attempt))
        raise errors.ServiceUnavailable()

    def user_id_by(self, kind: str, key: str) -> str | None:
        """The owner of a ``USERNAME`` or ``EMAIL`` guard, if any (strongly consistent)."""
        item = self._get(_guard_key(kind, key))
        return _get_s(item, "user_id") if item else None

    def get_user(self, user_id: str) -> UserRecord | None:
        item = self._get(_user_key(user_id))
        return _user_from(item) if item else None

    def put_session(self, session: SessionRecord) -> None:
        with _aws_call():
            self._client.put_item(TableName=self.table_name, Item=_session_item(session))

    def get_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        item = self._get(_session_key(user_id, session_id))
        return _session_from(item) if item else None

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        with _aws_call():
            response = self._client.get_item(
                TableName=self.table_name, Key=key, ConsistentRead=True
            )
        return response.get("Item")


def create_table(client: DynamoDBClient, table_name: str) -> bool:
    """Create the table (on-demand, TTL on ``expires_at``) unless it exists; True if created."""
    try:
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return True
