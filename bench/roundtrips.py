"""Count DynamoDB round trips, and record the calls, through botocore's event hooks.

``before-call`` fires once per API call; ``before-send`` once per HTTP attempt, so a
retry would show as a send without a call. Both are counted: the budget is on calls,
and the sends confirm that no call was silently retried. ``provide-client-params``
records each call's parameters, so a baseline can replay exactly the same calls.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore import xform_name
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass
class Calls:
    """What one stretch of code asked of DynamoDB."""

    operations: list[str] = field(default_factory=list)
    params: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sends: int = 0

    @property
    def count(self) -> int:
        return len(self.operations)

    def summary(self) -> str:
        return ", ".join(self.operations) or "none"

    def replayer(self, client: DynamoDBClient, *, strict: bool = False) -> Callable[[], bool]:
        """A function that makes exactly these calls again on ``client``.

        It returns whether every GetItem found its item, so a baseline can refuse as the
        real code would when the item is gone. A refused conditional write (the replay of
        a write that already happened) still made its round trip, so it is not an error,
        unless ``strict``: a baseline whose writes must commit, as the subject's do, says
        so, and a refusal then raises instead of quietly timing the cheaper failure.
        """
        methods: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
            (operation, getattr(client, xform_name(operation)), params)
            for operation, params in self.params
        ]

        def replay() -> bool:
            found = True
            for operation, method, recorded_params in methods:
                params = recorded_params
                if "ClientRequestToken" in params:
                    # The app gives every transaction a fresh idempotency token; a
                    # replay reusing the recorded one would be an idempotent no-op,
                    # or refused outright when a baseline changes the parameters.
                    params = {**params, "ClientRequestToken": uuid.uuid4().hex}
                try:
                    response = method(**params)
                except ClientError:
                    if strict:
                        raise
                    continue
                if operation == "GetItem" and "Item" not in response:
                    found = False
            return found

        return replay


@contextmanager
def recorded(client: DynamoDBClient) -> Iterator[Calls]:
    """Record every call ``client`` makes inside the block; the hooks are removed after."""
    calls = Calls()

    def on_params(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.params.append((str(model.name), copy.deepcopy(params)))

    def on_call(event_name: str, **_: Any) -> None:
        calls.operations.append(event_name.rsplit(".", 1)[-1])

    def on_send(**_: Any) -> None:
        calls.sends += 1

    events = client.meta.events
    hooks = (
        ("provide-client-params.dynamodb", on_params, "bench-params"),
        ("before-call.dynamodb", on_call, "bench-call"),
        ("before-send.dynamodb", on_send, "bench-send"),
    )
    for name, handler, unique_id in hooks:
        events.register(name, handler, unique_id=unique_id)
    try:
        yield calls
    finally:
        for name, handler, unique_id in hooks:
            events.unregister(name, handler, unique_id=unique_id)
