"""The deploy path, rehearsed offline: ``chalice package`` merged with
``infra/template.json``, then ``cfn-lint`` on the result, for every deployed stage."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404: runs our own tools with fixed arguments
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.edge import gateway
from scripts import deploy, render_infra
from tests.unit.test_deploy_role import CHALICE_TYPES, SAM_EVENTS

ROOT = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).parent / "chalice"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module", params=["dev", "prod"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stage = str(request.param)
    out = tmp_path_factory.mktemp(f"package-{stage}") / "out"
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            str(CHALICE),
            "package",
            "--stage",
            stage,
            "--merge-template",
            "infra/template.json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out / "sam.json"


def _template(path: Path) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return template


def test_cfn_lint_finds_nothing(packaged: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(CFN_LINT), "--format", "parseable", str(packaged)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_merge_keeps_chalice_and_adds_ours(packaged: Path) -> None:
    resources = _template(packaged)["Resources"]
    assert resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    for name in (
        "APIHandler",
        "Bearer",
        "ApiHandlerRole",
        "BearerRole",
        "Table",
        "SigningKeys",
        "PublicKeys",
    ):
        assert name in resources
    # The gateway answers and the API key switch went into Chalice's API document,
    # beside its own paths and authorizer.
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["swagger"] == "2.0"
    assert set(body["x-amazon-apigateway-gateway-responses"]) == set(gateway.GATEWAY_ANSWERS)
    assert set(body["securityDefinitions"]) == {"bearer", "api_key"}
    login = body["paths"]["/login"]["post"]
    assert login["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    assert login["security"]["Fn::If"][0] == "RequireApiKey"
    # The reviewed policy is still Chalice's, untouched by the merge; ours is separate.
    assert resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyName"]
    assert resources["FunctionsUseDataKey"]["Properties"]["Roles"] == [
        {"Ref": "ApiHandlerRole"},
        {"Ref": "BearerRole"},
    ]
    assert resources["ApiWritesTheEncryptedTable"]["Properties"]["Roles"] == [
        {"Ref": "ApiHandlerRole"}
    ]


def test_the_functions_name_what_the_template_creates(packaged: Path) -> None:
    """The table and secret the template creates for a stage are the ones the stage's
    functions are configured to use (the names are derived from the Stage parameter)."""
    template = _template(packaged)
    resources = template["Resources"]
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    stage = env["GATEHOUSE_STAGE"]
    assert stage in template["Parameters"]["Stage"]["AllowedValues"]
    table = resources["Table"]["Properties"]["TableName"]["Fn::Sub"]
    secret = resources["SigningKeys"]["Properties"]["Name"]["Fn::Sub"]
    public = resources["PublicKeys"]["Properties"]["Name"]["Fn::Sub"]
    assert table.replace("${Stage}", stage) == env["TABLE_NAME"]
    assert secret.replace("${Stage}", stage) == env["SIGNING_KEY_SECRET"]
    assert public.replace("${Stage}", stage) == env["PUBLIC_KEYS_SECRET"]


def test_the_issuer_is_merged_beside_chalices_variables(packaged: Path) -> None:
    """The merge adds ``ISSUER`` (the stack parameter) to the variables Chalice wrote for
    the API and the authorizer, and keeps every one of Chalice's."""
    template = _template(packaged)
    resources = template["Resources"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    stage = resources["APIHandler"]["Properties"]["Environment"]["Variables"]["GATEHOUSE_STAGE"]
    configured = config["stages"][stage]["environment_variables"]
    for function in ("APIHandler", "Bearer"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables == {**configured, "ISSUER": {"Ref": "Issuer"}}
    assert "ISSUER" not in resources["SendMail"]["Properties"]["Environment"]["Variables"]
    assert "Issuer" in template["Parameters"]


def test_the_stage_traces_as_configured(packaged: Path) -> None:
    """``"xray": true`` in .chalice/config.json: ``chalice deploy`` turns on tracing for
    the functions and the API stage, but ``chalice package`` only for the functions, so
    infra/base.json merges ``TracingEnabled`` into Chalice's ``RestAPI``. Both stages
    trace; a stage that stopped tracing would have to drop that too."""
    resources = _template(packaged)["Resources"]
    stage = resources["APIHandler"]["Properties"]["Environment"]["Variables"]["GATEHOUSE_STAGE"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    assert config["stages"][stage]["xray"] is True
    for function in ("APIHandler", "Bearer"):
        assert resources[function]["Properties"]["Tracing"] == "Active"
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True
    # The merge added a property and kept Chalice's own.
    assert resources["RestAPI"]["Properties"]["StageName"] == "api"


def test_the_mail_handler_subscribes_to_the_queue_the_template_creates(packaged: Path) -> None:
    """Chalice's ``on_sqs_message`` names the queue by ARN; the merged template creates
    that queue (and the function waits for it), and the API function enqueues on it."""
    resources = _template(packaged)["Resources"]
    api_env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    stage = api_env["GATEHOUSE_STAGE"]
    assert api_env["MAIL_TRANSPORT"] == "sqs"
    queue = resources["MailQueue"]["Properties"]["QueueName"]["Fn::Sub"].replace("${Stage}", stage)
    assert api_env["MAIL_QUEUE_NAME"] == queue
    handler = resources["SendMail"]
    assert handler["Properties"]["Handler"] == "app.send_mail"
    assert handler["DependsOn"] == ["MailQueue"]
    [event] = handler["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"]["Fn::Sub"].endswith(f":{queue}")
    assert event["Properties"]["BatchSize"] == 1
    assert resources["SendMailRole"]["Properties"]["Policies"][0]["PolicyName"]


def _granted(resources: dict[str, Any], role: str) -> set[str]:
    [policy] = resources[role]["Properties"]["Policies"]
    return {
        action
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }


def test_each_function_has_its_own_role_and_policy(packaged: Path) -> None:
    """``lambda_functions`` in .chalice/config.json gives the mail handler and the
    authorizer their own policy files: the mail handler's role can send through SES and
    poll the queue, and nothing of the table or the key ring; the authorizer's reads one
    item and the public keys' secret, nothing else; the API's role can enqueue but
    neither send mail nor receive."""
    resources = _template(packaged)["Resources"]
    stage = resources["APIHandler"]["Properties"]["Environment"]["Variables"]["GATEHOUSE_STAGE"]
    roles = {
        f: resources[f]["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in ("APIHandler", "Bearer", "SendMail")
    }
    assert roles == {
        "APIHandler": "ApiHandlerRole",
        "Bearer": "BearerRole",
        "SendMail": "SendMailRole",
    }
    api, mail = _granted(resources, "ApiHandlerRole"), _granted(resources, "SendMailRole")
    assert "sqs:SendMessage" in api
    assert not {"ses:SendEmail", "sqs:ReceiveMessage", "sqs:DeleteMessage"} & api
    assert {"ses:SendEmail", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= mail
    assert not {a for a in mail if a.startswith(("dynamodb:", "secretsmanager:"))}
    assert "sqs:SendMessage" not in mail
    assert {
        a for a in _granted(resources, "BearerRole") if not a.startswith(("logs:", "xray:"))
    } == {
        "dynamodb:GetItem",
        "secretsmanager:GetSecretValue",
    }
    [policy] = resources["BearerRole"]["Properties"]["Policies"]
    [secrets] = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue" in s["Action"]
    ]
    assert (
        secrets["Resource"] == f"arn:aws:secretsmanager:*:*:secret:gatehouse-{stage}-public-keys-*"
    )


def test_the_deploy_script_uploads_every_artifact_the_package_names(packaged: Path) -> None:
    """``scripts/deploy.py`` on Chalice's real output: every file the template names by
    a local path is uploaded and named by its ``s3://`` URI, no other property is left
    pointing at a local file, and the template is too large to travel in the request
    (so it goes through the bucket). The S3 side is tested in tests/unit/test_deploy.py."""
    resources = _template(packaged)["Resources"]
    stage = str(
        resources["APIHandler"]["Properties"]["Environment"]["Variables"]["GATEHOUSE_STAGE"]
    )
    uploaded: list[str] = []

    def upload(path: Path) -> str:
        assert path.parent == packaged.parent
        uploaded.append(path.name)
        return f"s3://artifacts/{path.name}"

    template = deploy.load_package(packaged.parent, stage)
    rewritten = deploy.rewrite_artifacts(template, packaged.parent, upload)
    assert sorted(uploaded) == ["deployment.zip", "layer-deployment.zip"]
    local = [
        f"{name}.{key}"
        for name, resource in rewritten["Resources"].items()
        for key, value in resource.get("Properties", {}).items()
        if key.endswith(("Uri", "Code", "Content"))
        and isinstance(value, str)
        and not value.startswith("s3://")
    ]
    assert local == []
    assert deploy.capabilities(rewritten) == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert len(json.dumps(rewritten, separators=(",", ":"))) > deploy.MAX_TEMPLATE_BODY


def test_the_deploy_roles_know_every_resource_type_and_event_of_the_package(
    packaged: Path,
) -> None:
    """infra/deploy-role.json's service role is checked (tests/unit/test_deploy_role.py)
    against the types of infra/template.json and those Chalice adds; a type or a function
    event Chalice adds beyond those (a schedule, say) must be granted there first."""
    resources = _template(packaged)["Resources"]
    ours = json.loads(render_infra.TEMPLATE.read_text(encoding="utf-8"))["Resources"]
    added = {r["Type"] for r in resources.values()} - {r.get("Type") for r in ours.values()}
    assert added <= CHALICE_TYPES
    events = {
        event["Type"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
    }
    assert events <= set(SAM_EVENTS)
