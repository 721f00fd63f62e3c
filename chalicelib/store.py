"""The one DynamoDB table: reads, conditional writes and transactions.

Only this module (with ``items``, which owns the layout) knows keys and condition
expressions. Guards are written with the user in one transaction under
``attribute_not_exists``, so uniqueness holds under any concurrency with no
read-then-write. Every AWS failure that is not the caller's fault becomes
``ServiceUnavailable`` (503 + Retry-After).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import errors, items
from chalicelib.items import ActivityEvent, SessionRecord, UserRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from chalicelib.config import Settings

#: Attempts at a transaction that lost a race (TransactionConflict) before a 503.
_TRANSACTION_ATTEMPTS = 5
#: Lambda-sized timeouts for every AWS client: fail fast into a 503 rather than hang.
CLIENT_CONFIG = Config(
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
    return session.client("dynamodb", endpoint_url=settings.dynamodb_endpoint, config=CLIENT_CONFIG)


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
        self._get(items.guard_key("HEALTH", "-"))

    # -------------------------------------------------------------- users

    def create_user(self, user: UserRecord) -> None:
        """Write the user and its guard items at once; raise ``UsernameTaken``/``EmailTaken``."""
        owner = {"user_id": {"S": user.id}, "type": {"S": "guard"}}
        puts = [
            {**items.user_key(user.id), **items.encode(user, "user")},
            {**items.guard_key("USERNAME", user.username_key), **owner},
        ]
        if user.email_key:
            puts.append({**items.guard_key("EMAIL", user.email_key), **owner})
        failed = self._transact([self._put_new(item) for item in puts])
        if failed == 1:
            raise errors.UsernameTaken()
        if failed == 2:
            raise errors.EmailTaken()
        if failed is not None:
            raise errors.GatehouseError()

    def user_id_by(self, kind: str, key: str) -> str | None:
        """The owner of a ``USERNAME`` or ``EMAIL`` guard, if any (strongly consistent)."""
        item = self._get(items.guard_key(kind, key))
        return item.get("user_id", {}).get("S") if item else None

    def get_user(self, user_id: str) -> UserRecord | None:
        item = self._get(items.user_key(user_id))
        return items.decode(UserRecord, item) if item else None

    def set_disabled(self, user_id: str, disabled: bool) -> bool:
        """Flag the user (dis)abled; False if there is no such user."""
        try:
            with _aws_call():
                self._client.update_item(
                    TableName=self.table_name,
                    Key=items.user_key(user_id),
                    UpdateExpression="SET disabled = :d",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":d": {"BOOL": disabled}},
                )
        except ClientError:
            return False
        return True

    def scan_users(self) -> Iterator[UserRecord]:
        """Every user, for the admin export (a Scan: never on a request path)."""
        paginator = self._client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.table_name,
            FilterExpression="#t = :user",
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={":user": {"S": "user"}},
            ConsistentRead=True,
        )
        with _aws_call():
            for page in pages:
                for item in page.get("Items", []):
                    yield items.decode(UserRecord, item)

    # -------------------------------------------------------------- sessions

    def put_session(self, session: SessionRecord) -> None:
        item = {
            **items.session_key(session.user_id, session.id),
            **items.encode(session, "session"),
        }
        with _aws_call():
            self._client.put_item(TableName=self.table_name, Item=item)

    def get_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        item = self._get(items.session_key(user_id, session_id))
        return items.decode(SessionRecord, item) if item else None

    def rotate_session(self, session: SessionRecord, *, spent_hash: str, now: int) -> bool:
        """Replace the session's refresh hash if ``spent_hash`` is still the live one.

        One transaction: the session (conditional on the old hash and on not having
        expired), a ``SPENT`` item that remembers the old hash for reuse detection, and a
        check that the user is not disabled. False if another refresh won the race.
        """
        spent = {
            **items.spent_key(session.user_id, spent_hash),
            "type": {"S": "spent"},
            "session_id": {"S": session.id},
            items.TTL_ATTRIBUTE: {"N": str(session.absolute_expires_at)},
        }
        failed = self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {
                            **items.session_key(session.user_id, session.id),
                            **items.encode(session, "session"),
                        },
                        "ConditionExpression": "refresh_hash = :old AND expires_at > :now",
                        "ExpressionAttributeValues": {
                            ":old": {"S": spent_hash},
                            ":now": {"N": str(now)},
                        },
                    }
                },
                {"Put": {"TableName": self.table_name, "Item": spent}},
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": items.user_key(session.user_id),
                        "ConditionExpression": "disabled = :no",
                        "ExpressionAttributeValues": {":no": {"BOOL": False}},
                    }
                },
            ]
        )
        if failed == 2:
            raise errors.InvalidToken("The refresh token is invalid or expired.")
        return failed is None

    def spent_by(self, user_id: str, refresh_hash: str) -> str | None:
        """The session a spent refresh token belonged to, if it was ever spent."""
        item = self._get(items.spent_key(user_id, refresh_hash))
        return item.get("session_id", {}).get("S") if item else None

    def delete_session(self, user_id: str, session_id: str) -> bool:
        """End one session; False if it did not exist."""
        try:
            with _aws_call():
                self._client.delete_item(
                    TableName=self.table_name,
                    Key=items.session_key(user_id, session_id),
                    ConditionExpression="attribute_exists(pk)",
                )
        except ClientError:
            return False
        return True

    def list_sessions(self, user_id: str) -> list[SessionRecord]:
        return [items.decode(SessionRecord, i) for i in self._query(user_id, "SESSION#")]

    def delete_sessions(self, user_id: str) -> int:
        """End every session of the user; returns how many there were."""
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._query(user_id, "SESSION#")]
        for start in range(0, len(keys), 25):
            requests = {
                self.table_name: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            }
            while requests:
                with _aws_call():
                    answer = self._client.batch_write_item(RequestItems=requests)  # type: ignore[arg-type]
                requests = answer.get("UnprocessedItems") or {}  # type: ignore[assignment]
        return len(keys)

    # -------------------------------------------------------------- activity

    def record_event(self, event: ActivityEvent) -> None:
        item = {
            **items.event_key(event),
            **items.encode(event, "event"),
            items.TTL_ATTRIBUTE: {"N": str(event.at + items.EVENT_RETENTION_SECONDS)},
        }
        with _aws_call():
            self._client.put_item(TableName=self.table_name, Item=item)

    # -------------------------------------------------------------- plumbing

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _transact(self, actions: list[dict[str, Any]]) -> int | None:
        """Run a transaction; the index of the first action whose condition failed, or None.

        A ``TransactionConflict`` means another transaction held an item; retry, and the
        loser then sees the winner's write as a failed condition.
        """
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                with _aws_call():
                    self._client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
                return None
            except ClientError as error:
                reasons = error.response.get("CancellationReasons", [])
                codes = [r.get("Code", "None") for r in reasons]
                if "ConditionalCheckFailed" in codes:
                    return codes.index("ConditionalCheckFailed")
                if "TransactionConflict" not in codes:
                    raise errors.ServiceUnavailable() from error
                time.sleep(0.01 * (2**attempt))
        raise errors.ServiceUnavailable()

    def _query(self, user_id: str, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": items.user_partition(user_id)},
                ":prefix": {"S": prefix},
            },
            ConsistentRead=True,
        )
        with _aws_call():
            for page in pages:
                yield from page.get("Items", [])

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
        TimeToLiveSpecification={"Enabled": True, "AttributeName": items.TTL_ATTRIBUTE},
    )
    return True
