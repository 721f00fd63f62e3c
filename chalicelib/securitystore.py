"""Security records: brute-force counters and one-time (reset, verification) tokens."""

from __future__ import annotations

from typing import Any

from chalicelib import items
from chalicelib.dynamo import Table, aws_call, conditional
from chalicelib.items import ActivityEvent, OneTimeRecord


class SecurityRecords(Table):
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
        answer = conditional(
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key=items.one_time_key(token_hash),
                ConditionExpression="purpose = :p AND expires_at > :now",
                ExpressionAttributeValues={":p": {"S": purpose}, ":now": {"N": str(now)}},
                ReturnValues="ALL_OLD",
            )
        )
        if answer is None:
            return None
        return items.decode(OneTimeRecord, answer.get("Attributes", {}))

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
        while request:
            with aws_call():
                answer = self._client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self.table_name, []):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                found[(pk, sk)] = int(item.get("failures", {}).get("N", "0"))
            request = answer.get("UnprocessedKeys") or {}
        return [found.get((k["pk"]["S"], k["sk"]["S"]), 0) for k in keys]

    def clear_counters(self, keys: list[items.Key]) -> None:
        self._delete_all(keys)

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
