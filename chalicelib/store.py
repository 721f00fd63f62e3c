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
from chalicelib.items import (
    ActivityEvent,
    OneTimeRecord,
    SecondFactor,
    SessionRecord,
    UserRecord,
)

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


def attribute(value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": value}


@contextmanager
def aws_call() -> Iterator[None]:
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


def transact(client: DynamoDBClient, actions: list[dict[str, Any]]) -> int | None:
    """Run a transaction; the index of the first action whose condition failed, or None.

    A ``TransactionConflict`` means another transaction held an item; retry, and the
    loser then sees the winner's write as a failed condition.
    """
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            with aws_call():
                client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
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


class Store:
    """Typed access to the table; returns records, raises domain errors."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client, shared with the other stores of the table (to-dos)."""
        return self._client

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
            raise errors.GatehouseError("An account with that id already exists.")

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
            with aws_call():
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

    def update_profile(self, old: UserRecord, new: UserRecord) -> None:
        """Write ``new`` over ``old``. A new email moves its guard in the same transaction
        (claim the new one under ``attribute_not_exists``, release the old); the user item
        is written only if nobody changed its email since ``old`` was read."""
        actions: list[dict[str, Any]] = []
        if new.email_key != old.email_key and new.email_key:
            owner = {"user_id": {"S": new.id}, "type": {"S": "guard"}}
            actions.append(self._put_new({**items.guard_key("EMAIL", new.email_key), **owner}))
            if old.email_key:
                actions.append(self._delete_guard("EMAIL", old.email_key, old.id))
        actions.append(
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {**items.user_key(new.id), **items.encode(new, "user")},
                    "ConditionExpression": "attribute_exists(pk) AND "
                    "(email_key = :old OR (attribute_type(email_key, :null)))",
                    "ExpressionAttributeValues": {
                        ":old": {"S": old.email_key or ""},
                        ":null": {"S": "NULL"},
                    },
                }
            }
        )
        failed = self._transact(actions)
        if failed == 0 and len(actions) > 1:
            raise errors.EmailTaken()
        if failed is not None:
            raise errors.ServiceUnavailable("The profile changed meanwhile; try again.")

    def set_password(self, user_id: str, password_hash: str) -> None:
        with aws_call():
            self._client.update_item(
                TableName=self.table_name,
                Key=items.user_key(user_id),
                UpdateExpression="SET password_hash = :h",
                ExpressionAttributeValues={":h": {"S": password_hash}},
            )

    def delete_user(self, user: UserRecord) -> None:
        """Delete the user and its guards at once (so the names are free again), then
        everything else in the user's partition. A login racing this cannot open a session
        afterwards: opening one checks the user item still exists."""
        actions = [
            {"Delete": {"TableName": self.table_name, "Key": items.user_key(user.id)}},
            self._delete_guard("USERNAME", user.username_key, user.id),
        ]
        if user.email_key:
            actions.append(self._delete_guard("EMAIL", user.email_key, user.id))
        self._transact(actions)
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._query(user.id)]
        self._delete_all(keys)

    def _delete_guard(self, kind: str, key: str, owner_id: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": items.guard_key(kind, key),
                "ConditionExpression": "user_id = :me",
                "ExpressionAttributeValues": {":me": {"S": owner_id}},
            }
        }

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
        with aws_call():
            for page in pages:
                for item in page.get("Items", []):
                    yield items.decode(UserRecord, item)

    # -------------------------------------------------------------- sessions

    def open_session(
        self,
        session: SessionRecord,
        *,
        event: ActivityEvent,
        clear: list[items.Key],
        factor: SecondFactor,
    ) -> bool:
        """Write a new session, its login event and the cleared failure counters at once,
        if the user still exists, is not disabled, and the second factor (if any) is
        unspent. False otherwise: a racing delete, disable or replayed code loses."""
        actions: list[dict[str, Any]] = [
            self._user_guard(session.user_id, factor),
            {"Put": {"TableName": self.table_name, "Item": self._session_item(session)}},
            {"Put": {"TableName": self.table_name, "Item": self._event_item(event)}},
            *({"Delete": {"TableName": self.table_name, "Key": key}} for key in clear),
        ]
        return self._transact(actions) is None

    def _user_guard(self, user_id: str, factor: SecondFactor) -> dict[str, Any]:
        condition = "attribute_exists(pk) AND disabled = :no"
        values: dict[str, Any] = {":no": {"BOOL": False}}
        target = {"TableName": self.table_name, "Key": items.user_key(user_id)}
        if factor.totp_step is not None:
            values[":step"] = {"N": str(factor.totp_step)}
            return {
                "Update": {
                    **target,
                    "UpdateExpression": "SET mfa_last_step = :step",
                    "ConditionExpression": f"{condition} AND "
                    "(attribute_not_exists(mfa_last_step) OR mfa_last_step < :step)",
                    "ExpressionAttributeValues": values,
                }
            }
        if factor.recovery_before is not None:
            values[":before"] = {"S": factor.recovery_before}
            values[":after"] = {"S": factor.recovery_after or ""}
            return {
                "Update": {
                    **target,
                    "UpdateExpression": "SET recovery_hashes = :after",
                    "ConditionExpression": f"{condition} AND recovery_hashes = :before",
                    "ExpressionAttributeValues": values,
                }
            }
        return {
            "ConditionCheck": {
                **target,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }

    def _session_item(self, session: SessionRecord) -> dict[str, Any]:
        return {
            **items.session_key(session.user_id, session.id),
            **items.encode(session, "session"),
        }

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
            with aws_call():
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
        self._delete_all(keys)
        return len(keys)

    def _delete_all(self, keys: list[dict[str, Any]]) -> None:
        """Delete ``keys`` in batches of 25, retrying what DynamoDB left unprocessed."""
        for start in range(0, len(keys), 25):
            requests = {
                self.table_name: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            }
            while requests:
                with aws_call():
                    answer = self._client.batch_write_item(RequestItems=requests)  # type: ignore[arg-type]
                requests = answer.get("UnprocessedItems") or {}  # type: ignore[assignment]

    # -------------------------------------------------------------- activity

    def record_event(self, event: ActivityEvent) -> None:
        with aws_call():
            self._client.put_item(TableName=self.table_name, Item=self._event_item(event))

    def _event_item(self, event: ActivityEvent) -> dict[str, Any]:
        return {
            **items.event_key(event),
            **items.encode(event, "event"),
            items.TTL_ATTRIBUTE: {"N": str(event.at + items.EVENT_RETENTION_SECONDS)},
        }

    def list_events(self, user_id: str, limit: int) -> list[ActivityEvent]:
        """The newest ``limit`` events, newest first (one Query, read backwards)."""
        with aws_call():
            answer = self._client.query(
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": items.user_partition(user_id)},
                    ":prefix": {"S": "EVENT#"},
                },
                ScanIndexForward=False,
                Limit=limit,
            )
        return [items.decode(ActivityEvent, i) for i in answer.get("Items", [])]

    # -------------------------------------------------------------- MFA

    def set_mfa(
        self, user_id: str, changes: dict[str, Any], *, expect_pending: str | None = None
    ) -> bool:
        """Set (or, with ``None``, remove) MFA attributes of the user. With
        ``expect_pending``, only if that is still the pending secret (confirm races)."""
        sets = {k: v for k, v in changes.items() if v is not None}
        removes = [k for k, v in changes.items() if v is None]
        names = {f"#{k}": k for k in changes}
        values: dict[str, Any] = {f":{k}": attribute(v) for k, v in sets.items()}
        expression = ""
        if sets:
            expression += "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if removes:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in removes)
        condition = "attribute_exists(pk)"
        if expect_pending is not None:
            condition += " AND mfa_pending = :expected"
            values[":expected"] = {"S": expect_pending}
        try:
            with aws_call():
                self._client.update_item(
                    TableName=self.table_name,
                    Key=items.user_key(user_id),
                    UpdateExpression=expression.strip(),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except ClientError:
            return False
        return True

    # -------------------------------------------------------------- one-time tokens

    def put_one_time(self, token_hash: str, record: OneTimeRecord) -> None:
        item = {**items.one_time_key(token_hash), **items.encode(record, "one_time")}
        with aws_call():
            self._client.put_item(TableName=self.table_name, Item=item)

    def peek_one_time(self, token_hash: str) -> OneTimeRecord | None:
        item = self._get(items.one_time_key(token_hash))
        return items.decode(OneTimeRecord, item) if item else None

    def take_one_time(self, token_hash: str, purpose: str, now: int) -> OneTimeRecord | None:
        """Delete and return the token if it is live and for ``purpose``: single use even
        when two requests race, since only one conditional delete can succeed."""
        try:
            with aws_call():
                answer = self._client.delete_item(
                    TableName=self.table_name,
                    Key=items.one_time_key(token_hash),
                    ConditionExpression="purpose = :p AND expires_at > :now",
                    ExpressionAttributeValues={":p": {"S": purpose}, ":now": {"N": str(now)}},
                    ReturnValues="ALL_OLD",
                )
        except ClientError:
            return None
        return items.decode(OneTimeRecord, answer.get("Attributes", {}))

    def verify_email(self, user_id: str, email_key: str) -> bool:
        """Mark the email verified if it is still the one the token was sent to."""
        try:
            with aws_call():
                self._client.update_item(
                    TableName=self.table_name,
                    Key=items.user_key(user_id),
                    UpdateExpression="SET email_verified = :yes",
                    ConditionExpression="email_key = :k",
                    ExpressionAttributeValues={":yes": {"BOOL": True}, ":k": {"S": email_key}},
                )
        except ClientError:
            return False
        return True

    # -------------------------------------------------------------- throttle counters

    def get_counts(self, keys: list[items.Key]) -> list[int]:
        """The ``failures`` of each counter (0 where there is none), in one BatchGetItem."""
        if not keys:
            return []
        found: dict[tuple[str, str], int] = {}
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "pk, sk, failures",
            }
        }
        while request:
            with aws_call():
                answer = self._client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self.table_name, []):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                found[(pk, sk)] = int(item.get("failures", {}).get("N", "0"))
            request = answer.get("UnprocessedKeys") or {}
        return [found.get((k["pk"]["S"], k["sk"]["S"]), 0) for k in keys]

    def add_failures(
        self, counters: list[tuple[items.Key, int]], *, event: ActivityEvent | None
    ) -> None:
        """Add one failure to each counter (created on first use, reaped by TTL at the
        window's end) and record ``event``, in one transaction."""
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": key,
                    "UpdateExpression": "ADD failures :one "
                    "SET expires_at = if_not_exists(expires_at, :end), #t = :t",
                    "ExpressionAttributeNames": {"#t": "type"},
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":end": {"N": str(window_end)},
                        ":t": {"S": "counter"},
                    },
                }
            }
            for key, window_end in counters
        ]
        if event is not None:
            actions.append({"Put": {"TableName": self.table_name, "Item": self._event_item(event)}})
        if actions:
            self._transact(actions)

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
        return transact(self._client, actions)

    def _query(self, user_id: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every item of the user's partition whose sort key starts with ``prefix``."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": items.user_partition(user_id)}}
        if prefix:  # DynamoDB refuses begins_with on an empty string
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = {"S": prefix}
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        )
        with aws_call():
            for page in pages:
                yield from page.get("Items", [])

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        with aws_call():
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
