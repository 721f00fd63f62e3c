"""Session records: open, read, rotate (spending a refresh token), end, list.

See sessions.py for why each write looks the way it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.platform import errors
from chalicelib.store import items
from chalicelib.store.dynamo import Table, aws_call, conditional
from chalicelib.store.grants import unreused_code
from chalicelib.store.items import (
    ActivityEvent,
    CounterChange,
    PasskeyUse,
    SecondFactor,
    SessionRecord,
    UserRecord,
)
from chalicelib.store.passkeys import use_action
from chalicelib.store.security import counter_action


class SessionRecords(Table):
    def open_session(
        self,
        session: SessionRecord,
        *,
        event: ActivityEvent,
        clear: list[items.Key],
        factor: SecondFactor,
        passkey: PasskeyUse | None = None,
        password_hash: str | None = None,
        counters: Sequence[CounterChange] = (),
        code_hash: str | None = None,
    ) -> bool:
        """Write a new session, its login event, the cleared failure counters and the
        ``counters`` changes (the claimed attempt given back) at once,
        if the user still exists, is not disabled, still has ``password_hash`` (if given:
        the hash a password login verified), the second factor (if any) is unspent and
        the passkey (if any) still has the sign count the sign-in read, and the OAuth code
        (``code_hash``, if any) has not been presented again meanwhile. False otherwise:
        a racing delete, disable, password change, replayed code or cloned assertion
        loses."""
        actions: list[dict[str, Any]] = [
            self._user_guard(session.user_id, factor, password_hash),
            {"Put": {"TableName": self.table_name, "Item": self._session_item(session)}},
            self._event_put(event),
            *({"Delete": {"TableName": self.table_name, "Key": key}} for key in clear),
            *(counter_action(change, self.table_name) for change in counters),
        ]
        if passkey is not None:
            actions.append(use_action(self.table_name, passkey))
        if code_hash is not None:
            actions.append(unreused_code(self.table_name, code_hash))
        return self._transact(actions) is None

    def spend_factor(self, user_id: str, factor: SecondFactor) -> bool:
        """Spend a TOTP step or recovery code outside a login (a step-up check), with the
        same conditions as a login; False if it was spent meanwhile or the user is gone."""
        return self._transact([self._user_guard(user_id, factor)]) is None

    def _user_guard(
        self, user_id: str, factor: SecondFactor, password_hash: str | None = None
    ) -> dict[str, Any]:
        condition = "attribute_exists(pk) AND disabled = :no"
        values: dict[str, Any] = {":no": {"BOOL": False}}
        if password_hash is not None:
            condition += " AND password_hash = :password"
            values[":password"] = {"S": password_hash}
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

    def get_session_and_user(
        self, user_id: str, session_id: str
    ) -> tuple[SessionRecord | None, UserRecord | None]:
        """The session and its user in one round trip (TransactGetItems: consistent, and
        authorized item by item as two GetItems), for userinfo."""
        keys = (items.session_key(user_id, session_id), items.user_key(user_id))
        with aws_call():
            answer = self._client.transact_get_items(
                TransactItems=[{"Get": {"TableName": self.table_name, "Key": k}} for k in keys]
            )
        session_item, user_item = (r.get("Item") for r in answer["Responses"])
        return (
            items.decode(SessionRecord, session_item) if session_item else None,
            items.decode(UserRecord, user_item) if user_item else None,
        )

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
        written = conditional(
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key=items.session_key(user_id, session_id),
                ConditionExpression="attribute_exists(pk)",
            )
        )
        return written is not None

    def list_sessions(self, user_id: str) -> list[SessionRecord]:
        return [items.decode(SessionRecord, i) for i in self._query(user_id, "SESSION#")]

    def delete_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """End every session of the user but ``keep`` (if given), 25 to a BatchWriteItem;
        returns how many were ended."""
        keep_sk = items.session_key(user_id, keep)["sk"] if keep is not None else None
        keys = [
            {"pk": i["pk"], "sk": i["sk"]}
            for i in self._query(user_id, "SESSION#")
            if i["sk"] != keep_sk
        ]
        self._delete_all(keys)
        return len(keys)
