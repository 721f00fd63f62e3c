"""To-do items in the owner's partition, and the per-user count that caps them.

| item    | pk            | sk                 | notes                                  |
|---------|---------------|--------------------|----------------------------------------|
| to-do   | ``USER#<id>`` | ``TODO#<todo id>`` | id: creation ms + random, newest last  |
| count   | ``USER#<id>`` | ``TODOCOUNT``      | how many to-dos the user holds         |

A create and a delete change the item and the count in one transaction, so the cap holds
under any concurrency. Every read is one Query or GetItem in the caller's partition:
the partition key comes from the authenticated caller, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.platform import errors
from chalicelib.store import items
from chalicelib.store.dynamo import attribute, aws_call, conditional, transact, user_exists

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class TodoRecord:
    id: str
    text: str
    completed: bool
    created_at: int
    updated_at: int


def _todo_key(user_id: str, todo_id: str) -> items.Key:
    return {"pk": {"S": items.user_partition(user_id)}, "sk": {"S": f"TODO#{todo_id}"}}


def _count_key(user_id: str) -> items.Key:
    return {"pk": {"S": items.user_partition(user_id)}, "sk": {"S": "TODOCOUNT"}}


@dataclass(frozen=True)
class Page:
    todos: list[TodoRecord]
    #: The sort key to continue after, or None on the last page.
    last_sort_key: str | None


class TodoStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def create(self, user_id: str, todo: TodoRecord, *, limit: int) -> bool:
        """Add ``todo`` if the user holds fewer than ``limit``; False at the cap, and
        ``InvalidToken`` if the account was deleted since the authorizer let it in."""
        failed = transact(
            self._client,
            [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _count_key(user_id),
                        "UpdateExpression": "ADD #n :one SET #t = :t",
                        "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
                        "ExpressionAttributeNames": {"#n": "count", "#t": "type"},
                        "ExpressionAttributeValues": {
                            ":one": {"N": "1"},
                            ":limit": {"N": str(limit)},
                            ":t": {"S": "todo_count"},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**_todo_key(user_id, todo.id), **items.encode(todo, "todo")},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                user_exists(self.table_name, user_id),
            ],
        )
        if failed == 2:
            raise errors.InvalidToken()
        return failed is None

    def get(self, user_id: str, todo_id: str) -> TodoRecord | None:
        with aws_call():
            answer = self._client.get_item(
                TableName=self.table_name, Key=_todo_key(user_id, todo_id), ConsistentRead=True
            )
        item = answer.get("Item")
        return items.decode(TodoRecord, item) if item else None

    def page(self, user_id: str, *, limit: int, after: str | None) -> Page:
        """Up to ``limit`` to-dos, newest first, after the sort key ``after``: one Query.

        It asks for one more than ``limit``: DynamoDB returns a LastEvaluatedKey whenever
        it stops at its Limit, even with nothing after, so a list of exactly ``limit``
        to-dos would promise a next page that is empty.
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :todo)",
            "ExpressionAttributeValues": {
                ":pk": {"S": items.user_partition(user_id)},
                ":todo": {"S": "TODO#"},
            },
            "ScanIndexForward": False,
            "Limit": limit + 1,
            "ConsistentRead": True,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {
                "pk": {"S": items.user_partition(user_id)},
                "sk": {"S": after},
            }
        with aws_call():
            answer = self._client.query(**request)
        raw = answer.get("Items", [])
        found = [items.decode(TodoRecord, i) for i in raw[:limit]]
        if len(raw) > limit:
            return Page(found, raw[limit - 1]["sk"]["S"])
        last = answer.get("LastEvaluatedKey")  # only if DynamoDB stopped at 1 MB
        return Page(found, last["sk"]["S"] if last else None)

    def update(self, user_id: str, todo_id: str, changes: dict[str, Any]) -> TodoRecord | None:
        """Apply ``changes`` (text, completed, updated_at) if the to-do exists."""
        names = {f"#{k}": k for k in changes}
        values = {f":{k}": attribute(v) for k, v in changes.items()}
        answer = conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key=_todo_key(user_id, todo_id),
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in changes),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        )
        if answer is None:
            return None
        return items.decode(TodoRecord, answer["Attributes"])

    def delete(self, user_id: str, todo_id: str) -> bool:
        """Remove the to-do and count it out, at once; False if there was none."""
        failed = transact(
            self._client,
            [
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": _todo_key(user_id, todo_id),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _count_key(user_id),
                        "UpdateExpression": "ADD #n :minus",
                        "ExpressionAttributeNames": {"#n": "count"},
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                    }
                },
            ],
        )
        if failed is not None and failed != 0:
            raise errors.ServiceUnavailable()
        return failed is None
