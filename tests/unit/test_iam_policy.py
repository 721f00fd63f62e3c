"""Each Lambda function's reviewed IAM policy grants exactly what its code calls.

``autogen_policy`` is off (Chalice's generator reads only app.py), so this test is the
net. It reads app.py and chalicelib with ``ast``, finds every call of a DynamoDB,
Secrets Manager, SES or SQS client method (named as botocore's service models name them),
every ``get_paginator``/``get_waiter`` and every transaction item, and maps each to its
IAM action. Which of those a function can make follows from the boto3 clients its
handler builds: the test builds them as the handler does (``wiring.get()`` for the
API, ``wiring.delivery()`` for the mail handler) with the stage's environment and
records the services of the clients created. The authorizer builds the API's clients
too, but its path is one token check, so that would grant it every table write: its
calls are instead recorded while it answers tokens against moto (``authorizer_calls``),
each with the table or secret it names, and each must be one the scan finds. Each
function's policy file (``.chalice/config.json``, resolved by Chalice's own ``Config``,
per function through ``lambda_functions``) must allow every such call on that stage's
table, secrets, SES identity or mail queue (a scanned call may reach each of the stage's
resources of its service; a recorded one, the one it named), and must grant nothing
else: no action no code of that function calls, no such action on a stage resource none
of its calls reaches (the authorizer reads the public keys' secret, never the signing
keys'), besides the Lambda runtime's log writes, X-Ray's trace writes when the stage
traces, and the receive/delete actions of Lambda's SQS event source mapping for a
function subscribed to the queue (Chalice adds those only to a generated policy). Calls
made only by operator commands (``scripts.admin``, the local table setup) are listed in
``OPERATOR_ONLY`` and must *not* be granted.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import inspect
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.client import BaseClient
from chalice.app import ScheduledEventConfig, SQSEventConfig
from chalice.config import Config
from chalice.constants import SQS_EVENT_SOURCE_POLICY, XRAY_POLICY
from moto import mock_aws

import app as gatehouse
from chalicelib import wiring
from chalicelib.accounts.sessions import Device
from chalicelib.accounts.users import Registration
from chalicelib.crypto.keys import KeyDocument
from chalicelib.platform.config import Settings
from chalicelib.store import dynamo
from scripts import admin

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
#: Operations IAM has no action for: a transaction is authorized item by item, by the
#: actions of ``TRANSACT_ITEMS`` (a policy naming them grants nothing; cfn-lint W3037).
NO_IAM_ACTION = frozenset({"dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"})
#: botocore waiters the code uses, by the operation they poll.
WAITERS = {"table_exists": "dynamodb:DescribeTable"}
#: (file, function, action) made only by operator commands with the operator's own
#: credentials, never by the Lambda functions; the policies must not grant them.
OPERATOR_ONLY = {
    ("chalicelib/store/dynamo.py", "create_table", "dynamodb:CreateTable"): "local table setup",
    ("chalicelib/store/dynamo.py", "create_table", "dynamodb:DescribeTable"): "its waiter",
    ("chalicelib/store/dynamo.py", "create_table", "dynamodb:UpdateTimeToLive"): "local setup",
    ("chalicelib/store/table.py", "scan_users", "dynamodb:Scan"): "admin export",
}
#: (file, function, action) that only the key rotation makes (the ``rotate_keys``
#: schedule and the operator's key commands): granted to that function alone.
ROTATION_ONLY = {
    (
        "chalicelib/crypto/keys.py",
        "write",
        "secretsmanager:PutSecretValue",
    ): "publish the public keys",
    ("chalicelib/crypto/keys.py", "write_if", "secretsmanager:PutSecretValue"): "rewrite the ring",
}


@dataclass(frozen=True)
class Call:
    path: str
    function: str
    line: int
    action: str
    #: The ARN a recorded call named (its table or secret); None for a scanned call,
    #: which may reach any of the stage's resources of its service.
    resource: str | None = None


def _operations() -> dict[str, set[str]]:
    """snake_case client method -> IAM actions (service:Operation) it may be."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            action = f"{prefix}:{operation}"
            if action not in NO_IAM_ACTION:
                found.setdefault(xform_name(operation), set()).add(action)
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
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    calls: list[Call] = []
    for file in files:
        calls += scan_source(file.read_text(encoding="utf-8"), str(file.relative_to(ROOT)))
    return calls


_ARN = "arn:aws:{}:eu-west-1:123456789012:{}"


def _table_arn(name: str) -> str:
    return _ARN.format("dynamodb", f"table/{name}")


def _secret_arn(name: str) -> str:
    """A secret's ARN: its name and the six random characters Secrets Manager adds."""
    return _ARN.format("secretsmanager", f"secret:{name}-AbC123")


def _resources(stage: str) -> dict[str, tuple[str, ...]]:
    """Concrete ARNs, per service, of what the stage's functions touch: the table, the
    signing keys' and the public keys' secrets (in that order), the SES identity and
    the mail queue."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    env = config["stages"][stage]["environment_variables"]
    return {
        "dynamodb": (_table_arn(env["TABLE_NAME"]),),
        "secretsmanager": (
            _secret_arn(env["SIGNING_KEY_SECRET"]),
            _secret_arn(env["PUBLIC_KEYS_SECRET"]),
        ),
        "ses": (_ARN.format("ses", f"identity/{env['MAIL_SENDER'].split('@')[1]}"),),
        "sqs": (_ARN.format("sqs", env["MAIL_QUEUE_NAME"]),),
    }


def reaches(call: Call, resources: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """What ``call`` may act on: the resource it was recorded naming, else every one of
    the stage's resources of its service."""
    if call.resource is not None:
        return (call.resource,)
    return resources[call.action.split(":")[0]]


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


def missing(
    policy: dict[str, Any], calls: list[Call], resources: dict[str, tuple[str, ...]]
) -> list[Call]:
    operator = {(a, f, c) for a, f, c in OPERATOR_ONLY}
    return [
        call
        for call in calls
        if (call.path, call.function, call.action) not in operator
        and not all(allows(policy, call.action, r) for r in reaches(call, resources))
    ]


def wider(
    policy: dict[str, Any], calls: list[Call], resources: dict[str, tuple[str, ...]]
) -> set[tuple[str, str]]:
    """(action, resource) pairs the policy allows on one of the stage's resources that
    none of ``calls`` making that action reaches: the action is needed, but not there."""
    reached: dict[str, set[str]] = {}
    for call in calls:
        reached.setdefault(call.action, set()).update(reaches(call, resources))
    return {
        (action, resource)
        for action, touched in reached.items()
        for resource in resources[action.split(":")[0]]
        if resource not in touched and allows(policy, action, resource)
    }


STAGES = ("dev", "prod")
#: Chalice's name for each Lambda function of the app, and what its handler calls to get
#: the AWS clients it uses: the API and the authorizer build the whole ``Services``
#: (table, key ring, mail queue); the mail handler builds only its SES mailer.
HANDLER_CLIENTS: dict[str, Callable[[], object]] = {
    "api_handler": wiring.get,
    "bearer": wiring.get,
    "send_mail": wiring.delivery,
    "rotate_keys": lambda: wiring.rotation(Settings.from_env()),
}
#: The scheduled function that rotates the signing keys, and alone writes them.
ROTATION = "rotate_keys"
FUNCTIONS = tuple(HANDLER_CLIENTS)
#: The function whose calls are recorded rather than read off its clients (the name
#: Chalice scopes ``lambda_functions`` by: the authorizer function's own name).
AUTHORIZER = "bearer"
REGION = "eu-west-1"
#: What the Lambda runtime writes with every function's role (Chalice's generated
#: policies grant the same).
LOG_ACTIONS = frozenset({"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"})
#: What Chalice's generated policy adds for ``"xray": true`` (chalice.constants.XRAY_POLICY):
#: the Lambda runtime sends trace segments with the function's role. X-Ray has no
#: resource-level permissions, so the resource is ``*``.
XRAY_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
#: What Lambda's SQS event source mapping calls with a subscribed function's role.
POLL_ACTIONS = frozenset(SQS_EVENT_SOURCE_POLICY["Action"])


def _config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((ROOT / ".chalice" / "config.json").read_text("utf-8"))
    return config


def policy_file(stage: str, function: str) -> str:
    """The policy file Chalice gives ``function``'s role on ``stage`` (its per-function
    ``lambda_functions`` entry, else the stage's, else ``policy-<stage>.json``)."""
    config = Config(chalice_stage=stage, config_from_disk=_config()).scope(stage, function)
    return config.iam_policy_file or f"policy-{stage}.json"


def _policy(stage: str, function: str) -> dict[str, Any]:
    text = (ROOT / ".chalice" / policy_file(stage, function)).read_text(encoding="utf-8")
    policy: dict[str, Any] = json.loads(text)
    return policy


def _traced(stage: str) -> bool:
    config = _config()
    return bool(config["stages"][stage].get("xray", config.get("xray", False)))


def _subscribed() -> set[str]:
    return {s.name for s in gatehouse.app.event_sources if isinstance(s, SQSEventConfig)}


def _scheduled() -> set[str]:
    return {s.name for s in gatehouse.app.event_sources if isinstance(s, ScheduledEventConfig)}


@contextmanager
def as_deployed(stage: str) -> Iterator[pytest.MonkeyPatch]:
    """The stage's environment as in Lambda (no local endpoint, key file or outbox) and
    a container with nothing built; this process's services are put back afterwards."""
    previous = (wiring._Container.services, wiring._Container.delivery)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in admin.stage_environment(stage).items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("DDB_ENDPOINT", "DDB_PORT", "KEY_FILE", "OUTBOX_DIR", "AWS_REGION"):
            patch.delenv(name, raising=False)
        wiring.install(None)
        wiring.install_delivery(None)
        try:
            yield patch
        finally:
            wiring.install(previous[0])
            wiring.install_delivery(previous[1])


@functools.cache
def client_services(stage: str, function: str) -> frozenset[str]:
    """The AWS services whose clients ``function``'s handler builds on ``stage``: its
    builder runs with the stage's environment (as in Lambda) while boto3's
    ``Session.client`` records each service name. Building makes no AWS call."""
    created: set[str] = set()
    original = boto3.session.Session.client

    def client(self: boto3.session.Session, service_name: str, *args: Any, **kw: Any) -> Any:
        created.add(service_name)
        return original(self, service_name, *args, **kw)  # type: ignore[call-overload]

    with as_deployed(stage) as patch:
        patch.setattr(boto3.session.Session, "client", client)
        HANDLER_CLIENTS[function]()
    return frozenset(created)


def _call_site(action: str) -> Call:
    """``action`` named by the innermost frame of app.py or chalicelib making it, as the
    scan names a call (file, enclosing function)."""
    frame = inspect.currentframe()
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path == ROOT / "app.py" or ROOT / "chalicelib" in path.parents:
            return Call(str(path.relative_to(ROOT)), frame.f_code.co_name, frame.f_lineno, action)
        frame = frame.f_back
    raise AssertionError(f"{action} was not made by app.py or chalicelib")


def _authorize(token: str) -> str:
    """The authorizer's answer to a TOKEN event carrying ``token``: Allow or Deny."""
    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {token}",
        "methodArn": f"arn:aws:execute-api:{REGION}:123456789012:abc123/api/GET/protected",
    }
    answer: dict[str, Any] = gatehouse.bearer(event, {})
    effect: str = answer["policyDocument"]["Statement"][0]["Effect"]
    return effect


def _named(params: dict[str, Any]) -> str | None:
    """The ARN of the table or secret a call's parameters name (the calls the authorizer
    can make name one by ``TableName`` or ``SecretId``)."""
    if "TableName" in params:
        return _table_arn(params["TableName"])
    if "SecretId" in params:
        return _secret_arn(params["SecretId"])
    return None


@functools.cache
def authorizer_calls(stage: str) -> tuple[Call, ...]:
    """Every AWS call the authorizer makes on ``stage``, recorded (botocore's
    ``_make_api_call``) with the resource it names, while a cold container answers a
    valid token, one of an ended session and a malformed one, against moto holding the
    stage's table (with a user and two sessions, one ended) and its two key secrets.
    The answers are checked, so the recorded path is the real one and not an error's;
    the setup's own calls (a separately built ``Services``, as the API would) are left
    out."""
    made: list[Call] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # botocore-stubs omit it

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        call = _call_site(f"{SERVICES[self.meta.service_model.service_name]}:{operation}")
        made.append(replace(call, resource=_named(params)))
        return original(self, operation, params)

    with as_deployed(stage) as patch, mock_aws():
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.setenv(name, "testing")
        patch.delenv("AWS_PROFILE", raising=False)
        patch.setenv("BCRYPT_COST", "4")
        settings = Settings.from_env()
        dynamo.create_table(boto3.client("dynamodb", region_name=REGION), settings.table_name)
        document = KeyDocument.new(int(time.time()))
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.create_secret(Name=str(settings.signing_key_secret), SecretString=document.dumps())
        secrets.create_secret(
            Name=str(settings.public_keys_secret), SecretString=document.ring().public().dumps()
        )
        api = wiring.Services.build(settings)
        user = api.accounts.register(Registration("alice", "correct horse battery staple"))
        device = Device("test_iam_policy", "203.0.113.7")
        live = api.sessions.start(user, device)["access_token"]
        ended = api.sessions.start(user, device)["access_token"]
        api.sessions.end(user.id, api.tokens.verify(ended).session_id)
        patch.setattr(BaseClient, "_make_api_call", record)
        answers = [_authorize(token) for token in (live, ended, "not-a-token")]
    assert answers == ["Allow", "Deny", "Deny"]
    return tuple(made)


def function_calls(stage: str, function: str) -> list[Call]:
    """The code's calls through the clients ``function`` builds, operator calls aside;
    the authorizer's, as recorded."""
    if function == AUTHORIZER:
        return list(authorizer_calls(stage))
    excluded = set(OPERATOR_ONLY) | (set() if function == ROTATION else set(ROTATION_ONLY))
    made = client_services(stage, function)
    return [
        call
        for call in code_calls()
        if call.action.split(":")[0] in made
        and (call.path, call.function, call.action) not in excluded
    ]


def needed(stage: str, function: str) -> set[str]:
    """Every action ``function``'s role must have on ``stage``, and nothing more."""
    actions = {call.action for call in function_calls(stage, function)} | LOG_ACTIONS
    if _traced(stage):
        actions |= XRAY_ACTIONS
    if function in _subscribed():
        actions |= POLL_ACTIONS
    return actions


def surplus(policy: dict[str, Any], actions: set[str]) -> set[str]:
    """Granted actions outside ``actions`` (a wildcard is never in it)."""
    granted = {
        action
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in _listed(statement["Action"])
    }
    return granted - actions


def test_the_scan_finds_the_calls_the_code_is_known_to_make() -> None:
    actions = {c.action for c in code_calls()}
    assert {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "secretsmanager:GetSecretValue",
        "ses:SendEmail",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
    } <= actions


def test_every_function_of_the_app_is_checked() -> None:
    """A new handler (route function, authorizer, event source) needs its entry here."""
    authorizers = {a.name for a in gatehouse.app.builtin_auth_handlers}
    assert set(FUNCTIONS) == {"api_handler"} | authorizers | _subscribed() | _scheduled()


def test_the_handlers_build_the_clients_they_are_known_to_need() -> None:
    assert client_services("dev", "api_handler") == {"dynamodb", "secretsmanager", "sqs"}
    assert client_services("dev", "bearer") == {"dynamodb", "secretsmanager", "sqs"}
    assert client_services("dev", "send_mail") == {"ses"}
    assert client_services("dev", ROTATION) == {"secretsmanager"}


@pytest.mark.parametrize("stage", STAGES)
def test_the_authorizer_reads_the_session_and_the_public_keys_only(stage: str) -> None:
    """What the recording saw: the public keys' secret read on a cold start (never the
    signing keys') and one GetItem of the stage's table per token that verifies (the
    ended session's too), each a call the scan finds in the same function, through a
    client the authorizer builds (the SQS one goes unused)."""
    recorded = authorizer_calls(stage)
    table, (_, public) = _resources(stage)["dynamodb"][0], _resources(stage)["secretsmanager"]
    assert sorted((c.action, c.resource) for c in recorded) == [
        ("dynamodb:GetItem", table),
        ("dynamodb:GetItem", table),
        ("secretsmanager:GetSecretValue", public),
    ]
    scanned = {(c.path, c.function, c.action) for c in code_calls()}
    assert {(c.path, c.function, c.action) for c in recorded} <= scanned
    assert {c.action.split(":")[0] for c in recorded} < client_services(stage, AUTHORIZER)


CASES = [(stage, function) for stage in STAGES for function in FUNCTIONS]


@pytest.mark.parametrize(("stage", "function"), CASES)
def test_the_policy_grants_every_action_the_code_calls(stage: str, function: str) -> None:
    gaps = missing(_policy(stage, function), function_calls(stage, function), _resources(stage))
    assert not gaps, "\n".join(f"{c.path}:{c.line} {c.function}: {c.action}" for c in gaps)


@pytest.mark.parametrize(("stage", "function"), CASES)
def test_the_policy_grants_nothing_the_function_does_not_call(stage: str, function: str) -> None:
    policy = _policy(stage, function)
    extra = surplus(policy, needed(stage, function))
    assert not extra, f"{policy_file(stage, function)} grants {sorted(extra)} to {function}"
    beyond = wider(policy, function_calls(stage, function), _resources(stage))
    assert not beyond, f"{policy_file(stage, function)} grants {sorted(beyond)} to {function}"


def test_the_authorizer_check_fails_on_a_missing_or_an_extra_grant() -> None:
    """Its policy without the session read misses it; the stage's API policy (which the
    authorizer used to fall back to) grants it writes and the mail queue."""
    resources = _resources("dev")
    policy = _policy("dev", AUTHORIZER)
    calls = function_calls("dev", AUTHORIZER)
    assert not missing(policy, calls, resources)
    without_read = {
        "Statement": [s for s in policy["Statement"] if "dynamodb:GetItem" not in s["Action"]]
    }
    assert {c.action for c in missing(without_read, calls, resources)} == {"dynamodb:GetItem"}
    shared = _policy("dev", "api_handler")
    assert policy_file("dev", AUTHORIZER) != policy_file("dev", "api_handler")
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem", "sqs:SendMessage"} <= surplus(
        shared, needed("dev", AUTHORIZER)
    )


def _with_secret_grant(policy: dict[str, Any], resources: list[str]) -> dict[str, Any]:
    """``policy`` with its GetSecretValue statement's resources replaced."""
    changed: dict[str, Any] = json.loads(json.dumps(policy))
    [statement] = [
        s for s in changed["Statement"] if "secretsmanager:GetSecretValue" in _listed(s["Action"])
    ]
    statement["Resource"] = resources
    return changed


@pytest.mark.parametrize("stage", STAGES)
def test_the_authorizer_granted_the_signing_keys_fails(stage: str) -> None:
    """The broken policies: the signing keys' secret beside the public one, a wildcard
    over the stage's secrets, and the signing keys' secret instead of the public one.
    Each grants the authorizer what could mint tokens, and the check says so."""
    resources = _resources(stage)
    signing, public = resources["secretsmanager"]
    policy = _policy(stage, AUTHORIZER)
    calls = function_calls(stage, AUTHORIZER)
    assert not missing(policy, calls, resources)
    assert not wider(policy, calls, resources)
    granted = f"arn:aws:secretsmanager:*:*:secret:gatehouse-{stage}-signing-keys-*"
    published = f"arn:aws:secretsmanager:*:*:secret:gatehouse-{stage}-public-keys-*"

    beside = _with_secret_grant(policy, [published, granted])
    assert wider(beside, calls, resources) == {("secretsmanager:GetSecretValue", signing)}
    every = _with_secret_grant(policy, [f"arn:aws:secretsmanager:*:*:secret:gatehouse-{stage}-*"])
    assert wider(every, calls, resources) == {("secretsmanager:GetSecretValue", signing)}
    instead = _with_secret_grant(policy, [granted])
    assert [(c.action, c.resource) for c in missing(instead, calls, resources)] == [
        ("secretsmanager:GetSecretValue", public)
    ]
    assert wider(instead, calls, resources) == {("secretsmanager:GetSecretValue", signing)}


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_reads_both_key_secrets(stage: str) -> None:
    """It signs (the ring) and verifies (the public keys): a policy with either secret
    alone misses the other."""
    resources = _resources(stage)
    policy = _policy(stage, "api_handler")
    calls = function_calls(stage, "api_handler")
    for name in ("signing", "public"):
        only = _with_secret_grant(
            policy, [f"arn:aws:secretsmanager:*:*:secret:gatehouse-{stage}-{name}-keys-*"]
        )
        assert {c.action for c in missing(only, calls, resources)} == {
            "secretsmanager:GetSecretValue"
        }


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_cannot_mail_directly_nor_read_the_queue(stage: str) -> None:
    """The API function only enqueues; SES and the queue's receive side belong to the
    mail handler, whose role reaches neither the table nor the key ring."""
    resources = _resources(stage)
    [ses], [sqs] = resources["ses"], resources["sqs"]
    for function in ("api_handler", "bearer"):
        policy = _policy(stage, function)
        assert not allows(policy, "ses:SendEmail", ses)
        for action in POLL_ACTIONS - {"sqs:GetQueueAttributes"}:
            assert not allows(policy, action, sqs), (function, action)
    mail = _policy(stage, "send_mail")
    assert policy_file(stage, "send_mail") != policy_file(stage, "api_handler")
    for action in ("dynamodb:GetItem", "secretsmanager:GetSecretValue", "sqs:SendMessage"):
        for resource in resources[action.split(":")[0]]:
            assert not allows(mail, action, resource), action
    [send] = [s for s in mail["Statement"] if "ses:SendEmail" in _listed(s["Action"])]
    sender = admin.stage_environment(stage)["MAIL_SENDER"]
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": sender}}


@pytest.mark.parametrize(("stage", "function"), CASES)
def test_operator_only_actions_are_not_granted(stage: str, function: str) -> None:
    resources = _resources(stage)
    granted = [
        (action, resource)
        for _, _, action in OPERATOR_ONLY
        for resource in resources[action.split(":")[0]]
        if allows(_policy(stage, function), action, resource)
    ]
    assert not granted


def test_operator_only_list_is_current() -> None:
    """Every listed operator call still exists, so the list cannot hide a stale excuse."""
    found = {(c.path, c.function, c.action) for c in code_calls()}
    assert set(OPERATOR_ONLY) | set(ROTATION_ONLY) <= found


@pytest.mark.parametrize("stage", STAGES)
def test_only_the_rotation_may_write_the_keys(stage: str) -> None:
    """Neither the API nor the authorizer nor the mail handler can rewrite a secret;
    the rotation can rewrite both, and reads nothing else."""
    resources = _resources(stage)
    for function in FUNCTIONS:
        policy = _policy(stage, function)
        for secret in resources["secretsmanager"]:
            writes = allows(policy, "secretsmanager:PutSecretValue", secret)
            assert writes == (function == ROTATION), (function, secret)
    rotation = _policy(stage, ROTATION)
    for action in ("dynamodb:GetItem", "sqs:SendMessage", "ses:SendEmail"):
        for resource in resources[action.split(":")[0]]:
            assert not allows(rotation, action, resource), action


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
    sources = [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]
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
                "Action": ["dynamodb:PutItem"],
                "Resource": "arn:aws:dynamodb:*:*:table/gatehouse-dev",
            }
        ]
    }
    gaps = {c.action for c in missing(policy, calls, _resources("dev"))}
    assert gaps == {"dynamodb:Scan", "dynamodb:DeleteItem"}


def test_a_surplus_grant_fails() -> None:
    """The other direction is not vacuous either: SES on the API's role is reported."""
    policy = json.loads(json.dumps(_policy("dev", "api_handler")))
    policy["Statement"].append(
        {"Effect": "Allow", "Action": "ses:SendEmail", "Resource": "arn:aws:ses:*:*:identity/*"}
    )
    assert surplus(policy, needed("dev", "api_handler")) == {"ses:SendEmail"}


def test_a_grant_on_another_stage_resource_does_not_count() -> None:
    calls = scan_source("def f(c):\n    c.get_item(TableName='t')\n", "chalicelib/x.py")
    assert missing(_policy("prod", "api_handler"), calls, _resources("dev")) == calls


@pytest.mark.parametrize(("stage", "function"), CASES)
def test_tracing_is_granted_exactly_when_the_stage_traces(stage: str, function: str) -> None:
    assert set(XRAY_POLICY["Action"]) == XRAY_ACTIONS
    granted = {a for a in XRAY_ACTIONS if allows(_policy(stage, function), a, "*")}
    assert granted == (set(XRAY_ACTIONS) if _traced(stage) else set())


def _queue_arn(queue: str) -> str:
    return f"arn:aws:sqs:eu-west-1:123456789012:{queue}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_mail_handler_may_poll_its_queue(stage: str) -> None:
    """Lambda's event source mapping receives and deletes with the handler's role; with
    ``autogen_policy`` off Chalice leaves those grants (SQS_EVENT_SOURCE_POLICY) to us.
    Every SQS handler's queue is the stage's mail queue, and the handler's policy grants
    each action on it and not on the dead-letter queue."""
    sources = [s for s in gatehouse.app.event_sources if isinstance(s, SQSEventConfig)]
    assert [s.name for s in sources] == ["send_mail"]
    queue = admin.stage_environment(stage)["MAIL_QUEUE_NAME"]
    assert queue == f"gatehouse-{stage}-mail"
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} == POLL_ACTIONS
    policy = _policy(stage, "send_mail")
    for action in POLL_ACTIONS:
        assert allows(policy, action, _queue_arn(queue)), action
        assert not allows(policy, action, _queue_arn(f"{queue}-dead-letter")), action
