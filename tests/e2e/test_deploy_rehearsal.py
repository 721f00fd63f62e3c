"""The deploy path, rehearsed in process against moto (``make deploy-rehearsal``).

``chalice deploy --stage dev`` runs through Chalice's own deployer (the code path of the
CLI command) against moto's ``mock_aws``, on a temporary copy of the project so
``.chalice/deployed/`` is not written into the repository. The table and the two key
secrets are created from ``infra/template.json`` as CloudFormation would (moto does not
run the merged template here), ``scripts.admin rotate-key`` writes the key ring and its
public keys, and the deployed handlers (found by the names Chalice gave the Lambda
functions) are driven with API Gateway's events: the authorizer with a TOKEN event, then
the route with the authorizer's answer in its request context. The mail queues are
created from the template too (Chalice's SQS subscription needs the queue to exist);
moto's SQS runs the event source
mapping Chalice created (on SendMessage it receives the message, invokes the function
and deletes the message only when the invocation succeeded), and its Lambda invocation
is pointed at the handler in this checkout (see ``_patch_moto``), so the verification
mail the registration enqueues goes out through (moto's) SES, and a failing send leaves
it on the queue for a retry. ``chalice delete`` then removes what was
deployed.

moto stores each function's zip without running it, so the handlers run from this
checkout; the test checks the zip Chalice uploaded holds the same app.py.

``mock_aws`` is entered inside this test only, and the services built for it are
uninstalled afterwards: the DynamoDB Local calls of every other test are untouched.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.cli.factory import CLIFactory
from chalice.utils import UI
from moto import mock_aws
from moto.apigateway.models import APIGatewayBackend
from moto.awslambda.models import LambdaBackend
from moto.ses.models import ses_backends

import app as gatehouse
from chalicelib import wiring
from chalicelib.crypto.keys import KeyDocument, VerifyingKeys
from scripts import admin
from tests.functional.lifecycle import VERIFY_MARKER

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
API_STAGE = "api"
#: The Lambda functions ``chalice deploy`` creates for this app (app name, stage, and
#: the authorizer's function name).
FUNCTIONS = {
    "gatehouse-dev": "app.app",
    "gatehouse-dev-bearer": "app.bearer",
    "gatehouse-dev-send_mail": "app.send_mail",
    "gatehouse-dev-rotate_keys": "app.rotate_keys",
}


def _copy_project(dest: Path) -> Path:
    """What ``chalice deploy`` reads: app.py, chalicelib, requirements and .chalice
    (config, policies and, when present, the cached automatic layer, which saves
    building it again: its name is a hash of the requirements)."""
    # The cached app package is left behind: the one in the copy is the one built now.
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployed", "appcode-*")
    shutil.copy2(ROOT / "app.py", dest / "app.py")
    shutil.copy2(ROOT / "requirements.txt", dest / "requirements.txt")
    shutil.copytree(ROOT / "chalicelib", dest / "chalicelib", ignore=ignore)
    shutil.copytree(ROOT / ".chalice", dest / ".chalice", ignore=ignore)
    return dest


def _stage_environment() -> dict[str, str]:
    env = admin.stage_environment(STAGE)
    assert env["GATEHOUSE_STAGE"] == STAGE
    return env


#: The API documents Chalice sent to ImportRestApi/PutRestApi, as sent (before patch 2).
SENT_API_DOCS: list[dict[str, Any]] = []


def _for_moto(api_doc: dict[str, Any]) -> dict[str, Any]:
    SENT_API_DOCS.append(api_doc)
    info = {"description": "", **api_doc.get("info", {})}
    moto_doc = {key: value for key, value in api_doc.items() if key != "swagger"}
    return {**moto_doc, "openapi": "3.0.1", "info": info}


#: The functions moto invoked (its SQS event source mapping), in order.
INVOKED: list[str] = []


def _patch_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where moto and AWS disagree on what Chalice sends; each patch is undone after the
    test (monkeypatch) and touches moto only, never Chalice or the app.

    1. ImportRestApi: moto reads ``info.description`` unconditionally (KeyError), but
       the Swagger/OpenAPI ``info`` object makes it optional and Chalice's document has
       none. The patch gives moto an empty description.
    2. ImportRestApi/PutRestApi: moto accepts OpenAPI 3 only ("Only OpenAPI 3.x.x are
       currently supported"); Chalice sends Swagger 2.0, which API Gateway imports. moto
       builds resources, methods and integrations from ``paths`` alone, which read the
       same in both versions, so the patch relabels the document as OpenAPI 3 for moto.
       moto ignores ``securityDefinitions`` (the authorizer) either way: the test checks
       the document Chalice sent names the authorizer function (``SENT_API_DOCS``).
    3. Invoke: moto runs a function in a Docker container (it needs the ``docker``
       package and daemon: a ModuleNotFoundError otherwise), and its SQS event source
       mapping invokes the function inside SendMessage. The patch runs the handler the
       function names from this checkout in process (the zip holds the same app.py),
       and reports a raised exception as Lambda does (``X-Amz-Function-Error``), which
       moto's mapping answers by making the message visible again.
    """
    import_original = APIGatewayBackend.import_rest_api
    put_original = APIGatewayBackend.put_rest_api

    def import_rest_api(
        self: APIGatewayBackend, api_doc: dict[str, Any], fail_on_warnings: bool
    ) -> Any:
        return import_original(self, _for_moto(api_doc), fail_on_warnings)

    def put_rest_api(
        self: APIGatewayBackend,
        function_id: str,
        api_doc: dict[str, Any],
        fail_on_warnings: bool,
        mode: str = "merge",
    ) -> Any:
        if "swagger" in api_doc:
            api_doc = _for_moto(api_doc)
        return put_original(self, function_id, api_doc, fail_on_warnings, mode)

    def invoke(  # noqa: PLR0917 - LambdaBackend.invoke's signature
        self: LambdaBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        function = self.get_function(function_name, qualifier)
        assert isinstance(function.handler, str)
        handler = _handler(function.handler)
        name = function.function_name
        INVOKED.append(name)
        try:
            result = handler(json.loads(body), Context(name))
        except Exception as error:  # noqa: BLE001 - Lambda reports any failure alike
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__}).encode()
        return json.dumps(result).encode()

    SENT_API_DOCS.clear()
    INVOKED.clear()
    monkeypatch.setattr(LambdaBackend, "invoke", invoke)
    monkeypatch.setattr(APIGatewayBackend, "import_rest_api", import_rest_api)
    monkeypatch.setattr(APIGatewayBackend, "put_rest_api", put_rest_api)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, fake credentials and the dev stage's environment for this test only; the
    previously installed services come back afterwards."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        **_stage_environment(),
        # The tests' bcrypt cost (tests/conftest.py), not the deployed 12: speed only.
        "BCRYPT_COST": "4",
    }.items():
        monkeypatch.setenv(name, value)
    # The session's DynamoDB Local endpoint and local key file must not leak in.
    for name in ("AWS_PROFILE", "AWS_REGION", "DDB_ENDPOINT", "DDB_PORT", "KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    _patch_moto(monkeypatch)
    previous = wiring._Container.services
    path = list(sys.path)
    wiring.install(None)
    wiring.install_delivery(None)
    try:
        with mock_aws():
            yield
    finally:
        wiring.install(previous)
        wiring.install_delivery(None)
        sys.path[:] = path  # Chalice puts the project directory in front to import app.py


def _template_resource(name: str) -> dict[str, Any]:
    template = json.loads((ROOT / "infra" / "template.json").read_text(encoding="utf-8"))
    properties: dict[str, Any] = template["Resources"][name]["Properties"]
    return properties


def _sub(value: Any) -> str:
    """``{"Fn::Sub": "gatehouse-${Stage}"}`` for this stage."""
    return str(value["Fn::Sub"]).replace("${Stage}", STAGE)


def create_stage_resources() -> None:
    """The KMS key, table, secrets and queues of infra/template.json, created as
    CloudFormation would from the same properties (moto does not run the merged
    template here)."""
    key_id = boto3.client("kms").create_key(Description=f"Gatehouse {STAGE}")["KeyMetadata"][
        "KeyId"
    ]
    table = _template_resource("Table")
    sse = table["SSESpecification"]
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=_sub(table["TableName"]),
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        # CloudFormation's SSEEnabled is the API's Enabled.
        SSESpecification={
            "Enabled": sse["SSEEnabled"],
            "SSEType": sse["SSEType"],
            "KMSMasterKeyId": key_id,
        },
        DeletionProtectionEnabled=STAGE == "prod",
    )
    ddb.update_time_to_live(
        TableName=_sub(table["TableName"]),
        TimeToLiveSpecification=table["TimeToLiveSpecification"],
    )
    ddb.update_continuous_backups(
        TableName=_sub(table["TableName"]),
        PointInTimeRecoverySpecification=table["PointInTimeRecoverySpecification"],
    )
    secret = _template_resource("SigningKeys")
    boto3.client("secretsmanager").create_secret(  # created empty, as the template does
        Name=_sub(secret["Name"]), Description=secret["Description"], KmsKeyId=key_id
    )
    public = _template_resource("PublicKeys")
    assert "KmsKeyId" not in public  # on the AWS managed key
    boto3.client("secretsmanager").create_secret(
        Name=_sub(public["Name"]), Description=public["Description"]
    )
    sqs = boto3.client("sqs")
    dead = _template_resource("MailDeadLetterQueue")
    dead_url = sqs.create_queue(
        QueueName=_sub(dead["QueueName"]),
        Attributes={
            "KmsMasterKeyId": key_id,
            "MessageRetentionPeriod": str(dead["MessageRetentionPeriod"]),
        },
    )["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue = _template_resource("MailQueue")
    template = json.loads((ROOT / "infra" / "template.json").read_text(encoding="utf-8"))
    receives = template["Parameters"]["MailMaxReceiveCount"]["Default"]
    sqs.create_queue(
        QueueName=_sub(queue["QueueName"]),
        Attributes={
            "KmsMasterKeyId": key_id,
            "VisibilityTimeout": str(queue["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn, "maxReceiveCount": receives}
            ),
        },
    )
    sender = _stage_environment()["MAIL_SENDER"]
    boto3.client("ses").verify_domain_identity(Domain=sender.split("@")[1])


def chalice(
    project: Path, command: str, sent: dict[str, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """``chalice deploy|delete --stage dev`` as the CLI commands do it, with the factory
    given a copy of the environment (Chalice adds the stage's variables to it). ``sent``
    collects the parameters of every API call Chalice makes, by operation name."""
    factory = CLIFactory(str(project), environ=dict(os.environ))
    config = factory.create_config_obj(chalice_stage_name=STAGE)
    session = factory.create_botocore_session()
    if sent is not None:

        def record(**kwargs: Any) -> None:
            sent.setdefault(kwargs["model"].name, []).append(dict(kwargs["params"]))

        session.register("provide-client-params", record)
    if command == "deploy":
        deployer = factory.create_default_deployer(session=session, config=config, ui=UI())
    else:
        deployer = factory.create_deletion_deployer(session=session, ui=UI())
    result: dict[str, Any] = deployer.deploy(config, chalice_stage_name=STAGE)
    return result


class Context:
    """The parts of the Lambda context object the handlers may read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = "1024"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "rehearsal"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class Gateway:
    """API Gateway in front of the deployed handlers: a TOKEN authorizer, then the
    Lambda proxy integration."""

    def __init__(self, api_id: str, handlers: dict[str, Any]) -> None:
        self.api_id = api_id
        self.route = handlers["gatehouse-dev"]
        self.authorizer = handlers["gatehouse-dev-bearer"]

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_id}/{API_STAGE}/{method}{path}"

    def authorize(self, method: str, path: str, token: str) -> dict[str, Any]:
        event = {
            "type": "TOKEN",
            "authorizationToken": f"Bearer {token}",
            "methodArn": self.method_arn(method, path),
        }
        answer: dict[str, Any] = self.authorizer(event, Context("gatehouse-dev-bearer"))
        return answer

    def allows(self, answer: dict[str, Any], method: str, path: str) -> bool:
        """API Gateway's reading of the policy: an explicit Deny wins, else any Allow."""
        arn = self.method_arn(method, path)
        effects = {
            statement["Effect"]
            for statement in answer["policyDocument"]["Statement"]
            for resource in (
                [statement["Resource"]]
                if isinstance(statement["Resource"], str)
                else statement["Resource"]
            )
            if fnmatch.fnmatchcase(arn, resource)
        }
        return "Allow" in effects and "Deny" not in effects

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        authorizer: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        host = f"{self.api_id}.execute-api.{REGION}.amazonaws.com"
        headers = {
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": "deploy-rehearsal",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
        }
        context: dict[str, Any] = {
            "accountId": ACCOUNT,
            "apiId": self.api_id,
            "stage": API_STAGE,
            "resourcePath": path,
            "path": f"/{API_STAGE}{path}",
            "httpMethod": method,
            "requestId": str(uuid.uuid4()),
            "domainName": host,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "deploy-rehearsal"},
        }
        if authorizer is not None:
            context["authorizer"] = {
                **authorizer["context"],
                "principalId": authorizer["principalId"],
            }
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": context,
            "body": None if body is None else json.dumps(body),
            "isBase64Encoded": False,
        }
        answer = self.route(event, Context("gatehouse-dev"))
        text = answer.get("body") or "{}"
        document: dict[str, Any] = json.loads(text)
        return int(answer["statusCode"]), document


def check_mail_subscription(lam: Any) -> str:
    """The mail handler's deployed SQS subscription: the stage's queue, one message per
    invocation. Returns the queue's URL."""
    # moto filters FunctionName against what CreateEventSourceMapping was given (Chalice
    # gives the ARN): list them all and match the ARN.
    [mapping] = [
        m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]
        if m["FunctionArn"].endswith(":function:gatehouse-dev-send_mail")
    ]
    queue = _stage_environment()["MAIL_QUEUE_NAME"]
    assert mapping["EventSourceArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"
    assert mapping["BatchSize"] == 1
    url: str = boto3.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
    return url


def queued(url: str) -> int:
    """Messages on the queue, visible or in flight."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _handler(name: str) -> Any:
    """``app.app`` / ``app.bearer``: the object a Lambda handler string names."""
    module, attribute = name.split(".")
    assert module == "app"
    return getattr(gatehouse, attribute)


def _deployed_app_py(project: Path) -> str:
    """app.py from the zip Chalice built and uploaded."""
    [package] = (project / ".chalice" / "deployments").glob("appcode-*.zip")
    with zipfile.ZipFile(package) as archive:
        return archive.read("app.py").decode("utf-8")


def sent_token(marker: str) -> str:
    """The token after ``marker`` in the newest message (moto's) SES sent."""
    sent = ses_backends[ACCOUNT][REGION].sent_messages
    body = next(m.body for m in reversed(sent) if marker in m.body)
    return str(body.split(marker, 1)[1].split()[0])


def test_deploy_drive_and_delete_the_dev_stage(aws: None, tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    create_stage_resources()
    sent: dict[str, list[dict[str, Any]]] = {}
    deployed = chalice(project, "deploy", sent)

    lam = boto3.client("lambda")
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert set(functions) == set(FUNCTIONS)
    for name, handler in FUNCTIONS.items():
        config = functions[name]
        assert config["Handler"] == handler
        assert config["TracingConfig"]["Mode"] == "Active"  # "xray": true
        assert config["Environment"]["Variables"] == _stage_environment()
    assert _deployed_app_py(project) == (ROOT / "app.py").read_text(encoding="utf-8")
    schedules = [r["ScheduleExpression"] for r in boto3.client("events").list_rules()["Rules"]]
    assert schedules == ["rate(1 hour)"]  # the key rotation's
    [rest_api] = [r for r in deployed["resources"] if r["resource_type"] == "rest_api"]
    api_id = rest_api["rest_api_id"]
    # moto's CreateDeployment ignores tracingEnabled: check what Chalice asked for.
    [deployment] = sent["CreateDeployment"]
    assert deployment == {"restApiId": api_id, "stageName": API_STAGE, "tracingEnabled": True}
    # moto ignores the authorizer of the imported document (see _patch_moto): check the
    # document names the bearer function and that /protected requires it.
    [api_doc] = SENT_API_DOCS
    [authorizer] = api_doc["securityDefinitions"].values()
    uri = authorizer["x-amazon-apigateway-authorizer"]["authorizerUri"]
    assert uri.endswith(":function:gatehouse-dev-bearer/invocations"), uri
    assert api_doc["paths"]["/protected"]["get"]["security"] == [{"bearer": []}]

    assert admin.main(["--stage", STAGE, "rotate-key"]) == 0
    secrets = boto3.client("secretsmanager")
    env = _stage_environment()
    ring = KeyDocument.parse(
        secrets.get_secret_value(SecretId=env["SIGNING_KEY_SECRET"])["SecretString"]
    )
    public = secrets.get_secret_value(SecretId=env["PUBLIC_KEYS_SECRET"])["SecretString"]
    assert set(VerifyingKeys.parse(public).verifying) == {ring.signing_kid}  # no private part
    # The schedule's handler, as EventBridge invokes it: a ring made now has nothing due.
    scheduled = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-12-03T17:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {},
    }
    _handler(FUNCTIONS["gatehouse-dev-rotate_keys"])(
        scheduled, Context("gatehouse-dev-rotate_keys")
    )
    assert secrets.get_secret_value(SecretId=env["SIGNING_KEY_SECRET"])["SecretString"] == (
        ring.dumps()
    )

    gateway = Gateway(api_id, {name: _handler(h) for name, h in FUNCTIONS.items()})
    user = {"username": "rehearsal", "password": "correct horse battery", "email": "r@example.com"}
    status, body = gateway.call("POST", "/register", user)
    assert status == 201, body
    # The verification mail was enqueued; the mapping handed it to the mail handler,
    # which sent it through (moto's) SES, and the message left the queue.
    assert INVOKED == ["gatehouse-dev-send_mail"]
    assert boto3.client("ses").get_send_quota()["SentLast24Hours"] == 1
    mail_queue = check_mail_subscription(lam)
    assert queued(mail_queue) == 0
    # The link in that mail verifies the address (a reset link goes only to a verified one).
    status, body = gateway.call("POST", "/email/verify", {"token": sent_token(VERIFY_MARKER)})
    assert status == 204, body
    status, tokens = gateway.call(
        "POST", "/login", {"username": user["username"], "password": user["password"]}
    )
    assert status == 200, tokens

    answer = gateway.authorize("GET", "/protected", tokens["access_token"])
    assert gateway.allows(answer, "GET", "/protected"), answer
    status, body = gateway.call("GET", "/protected", authorizer=answer)
    assert status == 200, body
    assert body["user"]["username"] == user["username"]

    denied = gateway.authorize("GET", "/protected", tokens["access_token"][:-4] + "AAAA")
    assert not gateway.allows(denied, "GET", "/protected"), denied

    # SES refuses (the sender's identity is gone): the request still succeeds, since it
    # only enqueued; the handler's invocation fails and the message stays queued for
    # SQS to deliver again (then, after the last receive, to the dead-letter queue).
    sender_domain = _stage_environment()["MAIL_SENDER"].split("@")[1]
    boto3.client("ses").delete_identity(Identity=sender_domain)
    status, body = gateway.call("POST", "/password/forgot", {"email": user["email"]})
    assert status == 202, body
    assert INVOKED == ["gatehouse-dev-send_mail"] * 2
    assert boto3.client("ses").get_send_quota()["SentLast24Hours"] == 1
    assert queued(mail_queue) == 1

    chalice(project, "delete")
    assert lam.list_functions()["Functions"] == []
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    api_ids = [api["id"] for api in boto3.client("apigateway").get_rest_apis()["items"]]
    assert api_id not in api_ids
    roles = [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]]
    assert not [r for r in roles if r.startswith("gatehouse-dev")], roles
