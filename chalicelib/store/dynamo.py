"""The DynamoDB plumbing every store shares: the client, error mapping, transactions.

Every AWS failure that is not the caller's fault becomes ``ServiceUnavailable`` (503 +
Retry-After). ``Table`` holds the low-level reads and writes the record stores build
on; only the store modules (with ``items``, which owns the layout) know keys and
condition expressions.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform import errors
from chalicelib.store import items
from chalicelib.store.items import ActivityEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from chalicelib.platform.config import Settings

T = TypeVar("T")
_JITTER = secrets.SystemRandom()
#: Attempts at a transaction that lost a race (TransactionConflict), or at a batch
#: write DynamoDB left partly unprocessed, before a 503.
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
    config = CLIENT_CONFIG.merge(Config(read_timeout=settings.dynamodb_read_timeout))
    return session.client("dynamodb", endpoint_url=settings.dynamodb_endpoint, config=config)


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


def conditional(write: Callable[[], T]) -> T | None:
    """Run one conditional write; its answer, or None if its condition failed. Every
    other failure is a 503 (``aws_call``)."""
    try:
        with aws_call():
            return write()
    except ClientError:
        return None


def transact(client: DynamoDBClient, actions: list[dict[str, Any]]) -> int | None:
    """Run a transaction; the index of the first action whose condition failed, or None."""
    refused = transact_refusals(client, actions)
    return None if refused is None else min(refused)


def transact_refusals(
    client: DynamoDBClient, actions: list[dict[str, Any]]
) -> dict[int, dict[str, Any]] | None:
    """Run a transaction; None if it committed, else every action whose condition failed,
    by index, with the item it saw (``{}`` unless the action asked for
    ``ReturnValuesOnConditionCheckFailure``).

    A ``TransactionConflict`` means another transaction held an item; retry, and the
    loser then sees the winner's write as a failed condition. Each attempt carries an
    idempotency token, which botocore's own resends keep: if a commit's answer is lost,
    DynamoDB answers the first outcome instead of running it again (which would fail
    its own conditions: a false ``username_taken``). A conflict retry is a new attempt
    with a new token. Conflicts that outlast every attempt are ``TransactionConflicts``.
    """
    for attempt in range(_TRANSACTION_ATTEMPTS):
        token = uuid.uuid4().hex
        try:
            with aws_call():
                client.transact_write_items(TransactItems=actions, ClientRequestToken=token)  # type: ignore[arg-type]
            return None
        except ClientError as error:
            reasons = error.response.get("CancellationReasons", [])
            codes = [r.get("Code", "None") for r in reasons]
            if "ConditionalCheckFailed" in codes:
                return {
                    index: dict(reason.get("Item") or {})
                    for index, reason in enumerate(reasons)
                    if reason.get("Code") == "ConditionalCheckFailed"
                }
            if "TransactionConflict" not in codes:
                raise errors.ServiceUnavailable() from error
            # Full jitter, so racing writers do not retry in lockstep.
            time.sleep(_JITTER.uniform(0, 0.01 * 2**attempt))
    raise TransactionConflicts()


class TransactionConflicts(errors.ServiceUnavailable):
    """Other transactions held the items through every attempt: a 503, unless the
    caller knows better (a throttle claim answers 429: the key is being hammered)."""


def until_processed(
    send: Callable[[dict[str, Any]], Any], request: dict[str, Any], leftover: str
) -> list[Any]:
    """Every answer to a batch ``request``, resending what DynamoDB left in ``leftover``
    (it does so when throttled, and botocore does not retry a partial success) after a
    jittered, growing pause; a 503 if some is still left after a few tries."""
    answers = []
    for attempt in range(_TRANSACTION_ATTEMPTS):
        if attempt:
            time.sleep(_JITTER.uniform(0, 0.05 * 2**attempt))
        with aws_call():
            answers.append(send(request))
        request = answers[-1].get(leftover) or {}
        if not request:
            return answers
    raise errors.ServiceUnavailable()


def user_exists(table_name: str, user_id: str) -> dict[str, Any]:
    """The transaction action that requires the user item: a write into a partition
    that races the account's deletion then fails instead of outliving the sweep."""
    return {
        "ConditionCheck": {
            "TableName": table_name,
            "Key": items.user_key(user_id),
            "ConditionExpression": "attribute_exists(pk)",
        }
    }


class Table:
    """One table and its client; the stores (users, sessions, security records, to-dos)
    are views of it."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    def ping(self) -> None:
        """One cheap read that proves the table answers (for ``/health``)."""
        self._get(items.guard_key("HEALTH", "-"))

    def _event_item(self, event: ActivityEvent) -> dict[str, Any]:
        return {
            **items.event_key(event),
            **items.encode(event, "event"),
            items.TTL_ATTRIBUTE: {"N": str(event.at + items.EVENT_RETENTION_SECONDS)},
        }

    def _event_put(self, event: ActivityEvent) -> dict[str, Any]:
        """The transaction action that records ``event``."""
        return {"Put": {"TableName": self.table_name, "Item": self._event_item(event)}}

    def _event_if_user(self, event: ActivityEvent) -> list[dict[str, Any]]:
        """The transaction actions that record ``event`` only while its user exists: a
        check on the user item, then the put (a put's own condition sees only the new
        item). An event racing the account's deletion then fails the check instead of
        landing in the partition the deletion already swept."""
        return [user_exists(self.table_name, event.user_id), self._event_put(event)]

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

    def _refusals(self, actions: list[dict[str, Any]]) -> dict[int, items.Item] | None:
        return transact_refusals(self._client, actions)

    def _query(self, user_id: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every item of the user's partition whose sort key starts with ``prefix``."""
        return self._query_partition(items.user_partition(user_id), prefix)

    def _query_partition(self, pk: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every item of partition ``pk`` whose sort key starts with ``prefix``."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
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

    def _delete_all(self, keys: list[dict[str, Any]]) -> None:
        """Delete ``keys`` in batches of 25 (BatchWriteItem's most), retrying what
        DynamoDB left unprocessed (it does so when throttled, and botocore does not retry
        a partial success) after a jittered, growing pause; a 503 if some are still left
        after ``_TRANSACTION_ATTEMPTS`` tries."""
        for start in range(0, len(keys), 25):
            requests = {
                self.table_name: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            }
            until_processed(
                lambda r: self._client.batch_write_item(RequestItems=r),
                requests,
                "UnprocessedItems",
            )


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
