"""Security records: brute-force counters, one-time (reset, verification) tokens and
WebAuthn challenges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.store import items
from chalicelib.store.dynamo import Table, aws_call, conditional
from chalicelib.store.items import ActivityEvent, ChallengeRecord, CounterChange, OneTimeRecord


class SecurityRecords(Table):
    def put_one_time(self, token_hash: str, record: OneTimeRecord) -> None:
        self._put_record(items.one_time_key(token_hash), record, "one_time")

    def peek_one_time(self, token_hash: str) -> OneTimeRecord | None:
        item = self._get(items.one_time_key(token_hash))
        return items.decode(OneTimeRecord, item) if item else None

    def take_one_time(self, token_hash: str, purpose: str, now: int) -> OneTimeRecord | None:
        """Delete and return the token if it is live and for ``purpose``: single use even
        when two requests race, since only one conditional delete can succeed."""
        taken = self._take(items.one_time_key(token_hash), purpose, now)
        return items.decode(OneTimeRecord, taken) if taken is not None else None

    def put_challenge(
        self, challenge_hash: str, record: ChallengeRecord, counters: list[CounterChange]
    ) -> dict[int, items.Item] | None:
        """Store a challenge if every one of ``counters`` allows it, and change them, in
        one transaction: None if it was stored, else the refused counters (by their index
        in ``counters``) with the items they saw."""
        key = items.challenge_key(challenge_hash)
        put = self._put_new({**key, **items.encode(record, "challenge")})
        refused = self._refusals([put, *(counter_action(c, self.table_name) for c in counters)])
        return None if refused is None else {i - 1: item for i, item in refused.items()}

    def _put_record(self, key: items.Key, record: object, kind: str) -> None:
        with aws_call():
            self._client.put_item(
                TableName=self.table_name, Item={**key, **items.encode(record, kind)}
            )

    def take_challenge(
        self, challenge_hash: str, purpose: str, now: int, *, user_id: str | None = None
    ) -> ChallengeRecord | None:
        """Spend a live challenge of ``purpose`` (and of ``user_id``, if given), like
        ``take_one_time``. Another user's challenge is left unspent."""
        bound = {":u": {"S": user_id}} if user_id is not None else {}
        taken = self._take(items.challenge_key(challenge_hash), purpose, now, bound)
        return items.decode(ChallengeRecord, taken) if taken is not None else None

    def _take(
        self, key: items.Key, purpose: str, now: int, bound: dict[str, Any] | None = None
    ) -> items.Item | None:
        """Delete ``key`` if it is live and for ``purpose`` (and, with ``bound``, of that
        user): its attributes, or None. TTL deletion is lazy, so expiry is checked here."""
        condition = "purpose = :p AND expires_at > :now"
        if bound:
            condition += " AND user_id = :u"
        answer = conditional(
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key=key,
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":p": {"S": purpose},
                    ":now": {"N": str(now)},
                    **(bound or {}),
                },
                ReturnValues="ALL_OLD",
            )
        )
        return answer.get("Attributes", {}) if answer is not None else None

    def verify_email(self, user_id: str, email_key: str) -> bool:
        """Mark the email verified if it is still the one the token was sent to."""
        written = conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key=items.user_key(user_id),
                UpdateExpression="SET email_verified = :yes",
                ConditionExpression="email_key = :k",
                ExpressionAttributeValues={":yes": {"BOOL": True}, ":k": {"S": email_key}},
            )
        )
        return written is not None

    def change_counters(self, counters: list[CounterChange]) -> dict[int, items.Item] | None:
        """Apply every change or none, in one transaction: None if they were made, else
        the refused counters (by index) with the items they saw. Only a change with a
        ``below`` bound can be refused, so a claim is atomic: however many requests race,
        at most ``below`` of them pass."""
        if not counters:
            return None
        return self._refusals([counter_action(c, self.table_name) for c in counters])

    def clear_counters(self, keys: list[items.Key]) -> None:
        self._delete_all(keys)

    def settle(
        self,
        counters: list[CounterChange],
        *,
        clear: Sequence[items.Key] = (),
        event: ActivityEvent | None = None,
    ) -> None:
        """Give claimed attempts back (``counters``), forget ``clear`` and record ``event``,
        in one transaction. If the event's user was deleted meanwhile, the counters still
        change (a second transaction) and the event is dropped, rather than written into
        the partition the deletion swept."""
        counting = [counter_action(c, self.table_name) for c in counters]
        counting += [{"Delete": {"TableName": self.table_name, "Key": k}} for k in clear]
        recording = self._event_if_user(event) if event is not None else []
        actions = counting + recording
        if actions and self._transact(actions) is not None and counting:
            # Only the user check can fail (the counters are unconditional): count alone.
            self._transact(counting)


def counter_action(change: CounterChange, table_name: str) -> dict[str, Any]:
    """The transaction action of one ``CounterChange``: an ``ADD`` (or, for a step of
    0, a ``ConditionCheck``), bounded by ``below`` when there is one. A refused bound
    returns the item, so the caller can tell which window is full and until when."""
    target: dict[str, Any] = {"TableName": table_name, "Key": change.key}
    values: dict[str, Any] = {}
    if change.below is not None:
        # A missing count is 0: below any positive bound, and refused by one of 0 or less.
        positive = change.below > 0
        target["ConditionExpression"] = (
            "attribute_not_exists(failures) OR failures < :below"
            if positive
            else "failures < :below"
        )
        target["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        values[":below"] = {"N": str(change.below)}
    if change.step == 0:
        if change.below is None:
            raise ValueError("a check without a bound checks nothing")
        return {"ConditionCheck": {**target, "ExpressionAttributeValues": values}}
    target["UpdateExpression"] = (
        "ADD failures :step SET expires_at = if_not_exists(expires_at, :end), #t = :t"
    )
    target["ExpressionAttributeNames"] = {"#t": "type"}
    target["ExpressionAttributeValues"] = {
        **values,
        ":step": {"N": str(change.step)},
        ":end": {"N": str(change.window_end)},
        ":t": {"S": "counter"},
    }
    return {"Update": target}
