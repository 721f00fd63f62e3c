"""Security records: brute-force counters, one-time (reset, verification) tokens and
WebAuthn challenges."""

from __future__ import annotations

from typing import Any

from chalicelib import items
from chalicelib.dynamo import Table, aws_call, conditional, until_processed
from chalicelib.items import ActivityEvent, ChallengeRecord, OneTimeRecord


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
        self,
        challenge_hash: str,
        record: ChallengeRecord,
        counted: list[tuple[items.Key, int]] | None = None,
    ) -> None:
        """Store a challenge; with ``counted``, add one to each of those counters (key,
        window end) in the same transaction: one round trip for both."""
        key = items.challenge_key(challenge_hash)
        if not counted:
            self._put_record(key, record, "challenge")
            return
        put = self._put_new({**key, **items.encode(record, "challenge")})
        self._transact([put, *(_add_one(k, end, self.table_name) for k, end in counted)])

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
        for answer in until_processed(
            lambda r: self._client.batch_get_item(RequestItems=r), request, "UnprocessedKeys"
        ):
            for item in answer.get("Responses", {}).get(self.table_name, []):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                found[(pk, sk)] = int(item.get("failures", {}).get("N", "0"))
        return [found.get((k["pk"]["S"], k["sk"]["S"]), 0) for k in keys]

    def clear_counters(self, keys: list[items.Key]) -> None:
        self._delete_all(keys)

    def add_failures(
        self, counters: list[tuple[items.Key, int]], *, event: ActivityEvent | None
    ) -> None:
        """Add one failure to each counter (created on first use, reaped by TTL at the
        window's end) and record ``event``, in one transaction. If the event's user was
        deleted meanwhile, the failures still count (a second transaction) and the event
        is dropped, rather than written into the partition the deletion swept."""
        counting = [_add_one(key, window_end, self.table_name) for key, window_end in counters]
        recording = self._event_if_user(event) if event is not None else []
        actions = counting + recording
        if actions and self._transact(actions) is not None and counting:
            # Only the user check can fail (the counters are unconditional): count alone.
            self._transact(counting)


def _add_one(key: items.Key, window_end: int, table_name: str) -> dict[str, Any]:
    """The transaction action that adds one to a throttle counter, created on first
    use and reaped by TTL at its window's end."""
    return {
        "Update": {
            "TableName": table_name,
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
