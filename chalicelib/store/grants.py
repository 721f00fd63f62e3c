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
from chalicelib.store.items import (
    ActivityEvent,
    AuthorizationCode,
    AuthorizationRequest,
    ConsentRecord,
)


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

    def put_authorization_code(
        self,
        code_hash: str,
        code: AuthorizationCode,
        *,
        consent: ConsentRecord,
        event: ActivityEvent,
    ) -> bool:
        """Store the code with the user's consent and its ``app_authorized`` event, in
        one transaction, while the user exists; False if the account is gone."""
        item = {
            **items.authorization_code_key(code_hash),
            **items.encode(code, "authorization_code"),
            items.TTL_ATTRIBUTE: {"N": str(code.expires_at)},
        }
        remembered = {
            **items.consent_key(consent.user_id, consent.client_id),
            **items.encode(consent, "consent"),
        }
        actions = [
            {"Put": {"TableName": self.table_name, "Item": item}},
            {"Put": {"TableName": self.table_name, "Item": remembered}},
            *self._event_if_user(event),
        ]
        return self._transact(actions) is None

    def get_consent(self, user_id: str, client_id: str) -> ConsentRecord | None:
        item = self._get(items.consent_key(user_id, client_id))
        return items.decode(ConsentRecord, item) if item else None

    def list_consents(self, user_id: str) -> list[ConsentRecord]:
        return [items.decode(ConsentRecord, i) for i in self._query(user_id, "CONSENT#")]

    def remove_app(self, user_id: str, client_id: str, *, event: ActivityEvent) -> bool:
        """Forget the user's consent to ``client_id`` and end every session of that client
        (its tokens die at once), recording ``event``; False if there was neither."""
        sessions = [
            {"pk": i["pk"], "sk": i["sk"]}
            for i in self._query(user_id, "SESSION#")
            if i.get("client_id", {}).get("S") == client_id
        ]
        consent = conditional(
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key=items.consent_key(user_id, client_id),
                ConditionExpression="attribute_exists(pk)",
            )
        )
        if consent is None and not sessions:
            return False
        self._delete_all(sessions)
        self._transact(self._event_if_user(event))
        return True

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
