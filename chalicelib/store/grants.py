"""OAuth authorization records: pending requests and authorization codes.

Both are stored under the SHA-256 of their random value, outside any user's partition,
and reaped by TTL. A request is taken (deleted and returned) by the one decision that
wins; a code is claimed by one conditional update, so of any number of concurrent
exchanges exactly one gets it, and a later one learns which session the winner opened
(to end it: RFC 6749 4.1.2 asks that a reused code revoke its tokens).

Ending it holds under any interleaving: a later claim first marks the code ``reused``,
then deletes the winner's session; the winner opens that session only on the condition
that the code is not ``reused`` (``unreused_code``, in the session's transaction). So
either the session was there to delete, or it is never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.store import items
from chalicelib.store.dynamo import Table, aws_call, conditional
from chalicelib.store.items import AuthorizationCode, AuthorizationRequest


@dataclass(frozen=True)
class CodeClaim:
    """What claiming a code found: the code if this claim won it, else the record of a
    code spent before (``spent``), or neither (unknown or expired)."""

    code: AuthorizationCode | None = None
    spent: AuthorizationCode | None = None


def unreused_code(table_name: str, code_hash: str) -> dict[str, Any]:
    """The transaction action that holds only while the code was presented once."""
    return {
        "ConditionCheck": {
            "TableName": table_name,
            "Key": items.authorization_code_key(code_hash),
            "ConditionExpression": "reused = :no",
            "ExpressionAttributeValues": {":no": {"BOOL": False}},
        }
    }


class GrantRecords(Table):
    def put_authorization_request(self, request_hash: str, request: AuthorizationRequest) -> None:
        item = {
            **items.authorization_request_key(request_hash),
            **items.encode(request, "authorization_request"),
        }
        with aws_call():
            self._client.put_item(TableName=self.table_name, Item=item)

    def get_authorization_request(self, request_hash: str, now: int) -> AuthorizationRequest | None:
        item = self._get(items.authorization_request_key(request_hash))
        request = items.decode(AuthorizationRequest, item) if item else None
        return request if request and request.expires_at > now else None

    def take_authorization_request(
        self, request_hash: str, now: int
    ) -> AuthorizationRequest | None:
        """Delete the request and return it, if it was there and live: of two decisions
        on one request only one gets it."""
        taken = conditional(
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key=items.authorization_request_key(request_hash),
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValues="ALL_OLD",
            )
        )
        if taken is None or "Attributes" not in taken:
            return None
        return items.decode(AuthorizationRequest, taken["Attributes"])

    def put_authorization_code(self, code_hash: str, code: AuthorizationCode) -> None:
        item = {
            **items.authorization_code_key(code_hash),
            **items.encode(code, "authorization_code"),
            items.TTL_ATTRIBUTE: {"N": str(code.expires_at)},
        }
        with aws_call():
            self._client.put_item(TableName=self.table_name, Item=item)

    def claim_authorization_code(self, code_hash: str, now: int) -> CodeClaim:
        """Mark the code spent if it is live and unspent (one UpdateItem): the code for
        the claim that wins, the spent record for one that comes after."""
        try:
            with aws_call():
                answer = self._client.update_item(
                    TableName=self.table_name,
                    Key=items.authorization_code_key(code_hash),
                    UpdateExpression="SET spent_at = :now",
                    ConditionExpression="attribute_exists(pk) AND spent_at = :zero "
                    "AND expires_at > :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}, ":zero": {"N": "0"}},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as error:
            old: items.Item | None = error.response.get("Item")  # type: ignore[assignment]
            spent = items.decode(AuthorizationCode, old) if old else None
            if spent is None or not spent.spent_at:
                return CodeClaim()
            self._mark_reused(code_hash)
            return CodeClaim(spent=spent)
        return CodeClaim(code=items.decode(AuthorizationCode, answer["Attributes"]))

    def _mark_reused(self, code_hash: str) -> None:
        with aws_call():
            self._client.update_item(
                TableName=self.table_name,
                Key=items.authorization_code_key(code_hash),
                UpdateExpression="SET reused = :yes",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
