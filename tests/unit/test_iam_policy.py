"""The reviewed IAM policies grant every AWS action the code calls.

``autogen_policy`` is off (Chalice's generator reads only app.py), so this test is the
net: it reads app.py and chalicelib with ``ast``, finds every call of a DynamoDB,
Secrets Manager, SES or SQS client method (named as botocore's service models name them),
every ``get_paginator``/``get_waiter`` and every transaction item, maps each to its IAM
action, and asserts ``.chalice/policy-<stage>.json`` allows it on that stage's table,
secret, SES identity or mail queue, and that the policy grants the receive/delete
actions Lambda's SQS event source mapping makes with the mail handler's role (Chalice
adds those only to a generated policy). Calls made only by operator commands (``scripts.admin``, the
local table setup) are listed in ``OPERATOR_ONLY`` and must *not* be granted.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from chalice.app import SQSEventConfig
from chalice.constants import SQS_EVENT_SOURCE_POLICY, XRAY_POLICY

import app as gatehouse

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "dynamodb": "dynamodb",
    "secretsmanager": "secretsmanager",
    "ses": "ses",
    "sqs": "sqs",
}
#: Transaction item kinds and the item-level action each needs besides TransactWriteItems.
TRANSACT_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
#: botocore waiters the code uses, by the operation they poll.
WAITERS = {"table_exists": "dynamodb:DescribeTable"}
#: (file, function, action) made only by operator commands with the operator's own
#: credentials, never by the Lambda functions; the policies must not grant them.
OPERATOR_ONLY = {
    ("chalicelib/dynamo.py", "create_table", "dynamodb:CreateTable"): "local table setup",
    ("chalicelib/dynamo.py", "create_table", "dynamodb:DescribeTable"): "its waiter",
    ("chalicelib/dynamo.py", "create_table", "dynamodb:UpdateTimeToLive"): "local setup",
    ("chalicelib/store.py", "scan_users", "dynamodb:Scan"): "admin export",
    ("chalicelib/keys.py", "write", "secretsmanager:PutSecretValue"): "admin rotate-key",
}


@dataclass(frozen=True)
class Call:
    path: str
    function: str
    line: int
    action: str


def _operations() -> dict[str, set[str]]:
    """snake_case client method -> IAM actions (service:Operation) it may be."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
    return found


OPERATIONS = _operations()


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.stack: list[str] = ["<module>"]
        self.calls: list[Call] = []

    def _add(self, node: ast.AST, action: str) -> None:
        self.calls.append(Call(self.path, self.stack[-1], getattr(node, "lineno", 0), action))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            name = func.attr
            first = node.args[0] if node.args else None
            literal = first.value if isinstance(first, ast.Constant) else None
            if name == "get_paginator" and isinstance(literal, str):
                for action in OPERATIONS[literal]:
                    self._add(node, action)
            elif name == "get_waiter" and isinstance(literal, str):
                self._add(node, WAITERS[literal])
            elif name in OPERATIONS:
                for action in OPERATIONS[name]:
                    self._add(node, action)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if isinstance(key, ast.Constant) and key.value in TRANSACT_ITEMS:
                # A {"Put": ..., } item of TransactItems: the value names TableName.
                self._add(node, TRANSACT_ITEMS[key.value])
        self.generic_visit(node)


def scan_source(source: str, path: str) -> list[Call]:
    scanner = _Scanner(path)
    scanner.visit(ast.parse(source))
    return scanner.calls


def code_calls() -> list[Call]:
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").glob("*.py"))]
    calls: list[Call] = []
    for file in files:
        calls += scan_source(file.read_text(encoding="utf-8"), str(file.relative_to(ROOT)))
    return calls


def _resources(stage: str) -> dict[str, str]:
    """A concrete ARN per service that the stage's functions touch."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    env = config["stages"][stage]["environment_variables"]
    account = "arn:aws:{}:eu-west-1:123456789012:{}"
    return {
        "dynamodb": account.format("dynamodb", f"table/{env['TABLE_NAME']}"),
        "secretsmanager": account.format(
            "secretsmanager", f"secret:{env['SIGNING_KEY_SECRET']}-AbC123"
        ),
        "ses": account.format("ses", f"identity/{env['MAIL_SENDER'].split('@')[1]}"),
        "sqs": account.format("sqs", env["MAIL_QUEUE_NAME"]),
    }


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["Action"])) and any(
            fnmatch.fnmatchcase(resource, r) for r in _listed(statement["Resource"])
        ):
            return True
    return False


def missing(policy: dict[str, Any], calls: list[Call], resources: dict[str, str]) -> list[Call]:
    operator = {(a, f, c) for a, f, c in OPERATOR_ONLY}
    return [
        call
        for call in calls
        if (call.path, call.function, call.action) not in operator
        and not allows(policy, call.action, resources[call.action.split(":")[0]])
    ]


STAGES = ("dev", "prod")


def _policy(stage: str) -> dict[str, Any]:
    text = (ROOT / ".chalice" / f"policy-{stage}.json").read_text(encoding="utf-8")
    policy: dict[str, Any] = json.loads(text)
    return policy


def test_the_scan_finds_the_calls_the_code_is_known_to_make() -> None:
    actions = {c.action for c in code_calls()}
    assert {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:TransactWriteItems",
        "dynamodb:ConditionCheckItem",
        "secretsmanager:GetSecretValue",
        "ses:SendEmail",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
    } <= actions


@pytest.mark.parametrize("stage", STAGES)
def test_the_policy_grants_every_action_the_code_calls(stage: str) -> None:
    gaps = missing(_policy(stage), code_calls(), _resources(stage))
    assert not gaps, "\n".join(f"{c.path}:{c.line} {c.function}: {c.action}" for c in gaps)


@pytest.mark.parametrize("stage", STAGES)
def test_operator_only_actions_are_not_granted(stage: str) -> None:
    resources = _resources(stage)
    granted = [
        action
        for _, _, action in OPERATOR_ONLY
        if allows(_policy(stage), action, resources[action.split(":")[0]])
    ]
    assert not granted


def test_operator_only_list_is_current() -> None:
    """Every listed operator call still exists, so the list cannot hide a stale excuse."""
    found = {(c.path, c.function, c.action) for c in code_calls()}
    assert set(OPERATOR_ONLY) <= found


def _callee(node: ast.Call) -> str | None:
    """The name a call calls, unless it is a boto3 client's own method."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if not isinstance(func, ast.Attribute):
        return None
    receiver = func.value
    if isinstance(receiver, ast.Name) and receiver.id == "client":
        return None
    if isinstance(receiver, ast.Attribute) and receiver.attr == "_client":
        return None
    return func.attr


def test_operator_only_functions_are_not_called_by_the_app() -> None:
    """The exempt functions run from scripts (admin, local setup), not from a request."""
    sources = [ROOT / "app.py", *(ROOT / "chalicelib").glob("*.py")]
    for name in ("create_table", "scan_users"):
        callers = [
            str(p.relative_to(ROOT))
            for p in sources
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and _callee(node) == name
        ]
        assert callers == [], (name, callers)


def test_a_missing_grant_fails() -> None:
    """The check is not vacuous: a Scan on a request path, or a transaction that deletes,
    is reported against a policy that lacks it."""
    source = (
        "def handler(client):\n"
        "    client.scan(TableName='t')\n"
        "    client.transact_write_items(TransactItems=[{'Delete': {'TableName': 't'}}])\n"
    )
    calls = scan_source(source, "chalicelib/example.py")
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:TransactWriteItems"],
                "Resource": "arn:aws:dynamodb:*:*:table/gatehouse-dev",
            }
        ]
    }
    gaps = {c.action for c in missing(policy, calls, _resources("dev"))}
    assert gaps == {"dynamodb:Scan", "dynamodb:DeleteItem"}


def test_a_grant_on_another_stage_resource_does_not_count() -> None:
    calls = scan_source("def f(c):\n    c.get_item(TableName='t')\n", "chalicelib/x.py")
    assert missing(_policy("prod"), calls, _resources("dev")) == calls


#: What Chalice's generated policy adds for ``"xray": true`` (chalice.constants.XRAY_POLICY):
#: the Lambda runtime sends trace segments with the function's role. With
#: ``autogen_policy`` off, a hand-written policy must grant them itself; X-Ray has no
#: resource-level permissions, so the resource is ``*``.
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


@pytest.mark.parametrize("stage", STAGES)
def test_tracing_is_granted_exactly_when_the_stage_traces(stage: str) -> None:
    assert set(XRAY_POLICY["Action"]) == set(XRAY_ACTIONS)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    traced = bool(config["stages"][stage].get("xray", config.get("xray", False)))
    granted = {action for action in XRAY_ACTIONS if allows(_policy(stage), action, "*")}
    assert granted == (set(XRAY_ACTIONS) if traced else set())


def _queue_arn(queue: str) -> str:
    return f"arn:aws:sqs:eu-west-1:123456789012:{queue}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_mail_handler_may_poll_its_queue(stage: str) -> None:
    """Lambda's event source mapping receives and deletes with the handler's role; with
    ``autogen_policy`` off Chalice leaves those grants (SQS_EVENT_SOURCE_POLICY) to us.
    Every SQS handler's queue is the stage's mail queue, and the policy grants each
    action on it."""
    sources = [s for s in gatehouse.app.event_sources if isinstance(s, SQSEventConfig)]
    assert [s.name for s in sources] == ["send_mail"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    queue = config["stages"][stage]["environment_variables"]["MAIL_QUEUE_NAME"]
    assert queue == f"gatehouse-{stage}-mail"
    actions = SQS_EVENT_SOURCE_POLICY["Action"]
    assert isinstance(actions, list)
    assert set(actions) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    for action in actions:
        assert allows(_policy(stage), action, _queue_arn(queue)), action
        other = _queue_arn(f"{queue}-dead-letter")
        assert not allows(_policy(stage), action, other), action
