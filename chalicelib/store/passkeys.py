"""Passkey records: a user's WebAuthn credentials and the count that caps them.

Each passkey lives in its owner's partition (``items.passkey_key``), so the partition key
always comes from a known user: the signed-in caller, or the ``userHandle`` of an
assertion. An add and a removal change the passkey, the ``PASSKEYCOUNT`` item and the
activity in one transaction, so the limit holds under any concurrency. A sign-in's new
sign count is written by the session-opening transaction (``use_action``).
"""

from __future__ import annotations

from typing import Any

from chalicelib.platform import errors
from chalicelib.store import items
from chalicelib.store.dynamo import Table
from chalicelib.store.items import ActivityEvent, PasskeyRecord, PasskeyUse


def use_action(table_name: str, use: PasskeyUse) -> dict[str, Any]:
    """The transaction action of a passkey sign-in: the new count and use time, only if
    the passkey still exists with the count the sign-in read (so a deleted passkey, or
    a second assertion racing with the same count, loses)."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": items.passkey_key(use.user_id, use.credential_id),
            "UpdateExpression": "SET sign_count = :new, last_used_at = :at, backed_up = :bs",
            "ConditionExpression": "sign_count = :stored",
            "ExpressionAttributeValues": {
                ":new": {"N": str(use.new_count)},
                ":stored": {"N": str(use.stored_count)},
                ":at": {"N": str(use.at)},
                ":bs": {"BOOL": use.backed_up},
            },
        }
    }


class PasskeyRecords(Table):
    def add_passkey(self, passkey: PasskeyRecord, *, limit: int, event: ActivityEvent) -> None:
        """Store a new passkey and its ``passkey_added`` event; 409 at the limit
        (``PasskeyLimitReached``) or for a credential the user already has
        (``PasskeyExists``); 404 if the account was deleted meanwhile, so nothing is
        written into the partition its deletion swept."""
        failed = self._transact(
            [
                self._count_change(passkey.user_id, +1, limit=limit),
                self._put_new(
                    {
                        **items.passkey_key(passkey.user_id, passkey.credential_id),
                        **items.encode(passkey, "passkey"),
                    }
                ),
                *self._event_if_user(event),
            ]
        )
        if failed == 0:
            raise errors.PasskeyLimitReached()
        if failed == 1:
            raise errors.PasskeyExists()
        if failed is not None:
            raise errors.NotFound("The account no longer exists.")

    def list_passkeys(self, user_id: str) -> list[PasskeyRecord]:
        return [items.decode(PasskeyRecord, i) for i in self._query(user_id, "PASSKEY#")]

    def delete_passkeys(self, user_id: str) -> int:
        """End every passkey of the user and its count (a password reset); how many."""
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._query(user_id, "PASSKEY")]
        self._delete_all(keys)
        return sum(1 for k in keys if k["sk"]["S"].startswith("PASSKEY#"))

    def get_passkey(self, user_id: str, credential_id: str) -> PasskeyRecord | None:
        item = self._get(items.passkey_key(user_id, credential_id))
        return items.decode(PasskeyRecord, item) if item else None

    def rename_passkey(
        self, user_id: str, credential_id: str, name: str, *, event: ActivityEvent
    ) -> bool:
        """Set the passkey's name and record ``event``; False if there is no such passkey."""
        rename = {
            "Update": {
                "TableName": self.table_name,
                "Key": items.passkey_key(user_id, credential_id),
                "UpdateExpression": "SET #n = :name",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {"#n": "name"},
                "ExpressionAttributeValues": {":name": {"S": name}},
            }
        }
        return self._transact([rename, self._event_put(event)]) is None

    def remove_passkey(self, user_id: str, credential_id: str, *, event: ActivityEvent) -> bool:
        """Delete the passkey, lower the count and record ``event``; False if it was not
        there (then nothing changes)."""
        remove = {
            "Delete": {
                "TableName": self.table_name,
                "Key": items.passkey_key(user_id, credential_id),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        actions = [remove, self._count_change(user_id, -1), self._event_put(event)]
        return self._transact(actions) is None

    def _count_change(self, user_id: str, step: int, *, limit: int | None = None) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": items.passkey_count_key(user_id),
            "UpdateExpression": "ADD #n :step SET #t = :t",
            "ExpressionAttributeNames": {"#n": "count", "#t": "type"},
            "ExpressionAttributeValues": {":step": {"N": str(step)}, ":t": {"S": "passkey_count"}},
        }
        if limit is not None:
            update["ConditionExpression"] = "attribute_not_exists(#n) OR #n < :limit"
            update["ExpressionAttributeValues"][":limit"] = {"N": str(limit)}
        return {"Update": update}
