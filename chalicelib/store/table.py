"""The one DynamoDB table, as one object: users (this module), sessions
(sessions.py), security records (security.py), passkeys (passkeys.py), OAuth clients
(clients.py) and OAuth grants (grants.py), on the shared plumbing of dynamo.py. Guards
are written with the user in one transaction under ``attribute_not_exists``, so
uniqueness holds under any concurrency with no read-then-write.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.platform import errors
from chalicelib.store import items
from chalicelib.store.clients import ClientRecords
from chalicelib.store.dynamo import (  # connect, create_table, CLIENT_CONFIG: re-exported
    CLIENT_CONFIG,
    attribute,
    aws_call,
    conditional,
    connect,
    create_table,
)
from chalicelib.store.grants import GrantRecords
from chalicelib.store.items import ActivityEvent, UserRecord
from chalicelib.store.passkeys import PasskeyRecords
from chalicelib.store.security import SecurityRecords
from chalicelib.store.sessions import SessionRecords

__all__ = ["CLIENT_CONFIG", "Store", "connect", "create_table"]


class Store(SessionRecords, SecurityRecords, PasskeyRecords, ClientRecords, GrantRecords):
    """Typed access to the table; returns records, raises domain errors."""

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
        written = conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key=items.user_key(user_id),
                UpdateExpression="SET disabled = :d",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":d": {"BOOL": disabled}},
            )
        )
        return written is not None

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

    # -------------------------------------------------------------- activity

    def record_event(self, event: ActivityEvent) -> None:
        """Record ``event`` unless its user has been deleted meanwhile (then drop it).

        One transaction (a check on the user item, the put): the same one round trip as
        a plain put. Events written here are on failure and account-change paths; a
        login's success event rides in the login's own transaction, which already
        checks the user.
        """
        self._transact(self._event_if_user(event))

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
        written = conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key=items.user_key(user_id),
                UpdateExpression=expression.strip(),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )
        return written is not None
