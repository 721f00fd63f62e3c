"""``scripts.deploy``: the artifact bucket and uploads against moto's S3 and STS, and
the change-set conversation against botocore's Stubber on the CloudFormation client
(moto's CloudFormation cannot run the SAM transform: it skips ``AWS::Serverless::*`` and
fails on what refers to them), so each request is checked as CloudFormation receives it
and each answer is one CloudFormation documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

from scripts import deploy
from tests.unit.conftest import REGION

ACCOUNT = "123456789012"  # moto's
STACK = "gatehouse-dev"
BUCKET = f"gatehouse-artifacts-{ACCOUNT}-{REGION}"
CHANGE_SET = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/c/1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/1"
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
URL = f"https://abc.execute-api.{REGION}.amazonaws.com/api/"
#: The Issuer the stack's EndpointURL gives (no trailing slash, as the functions use it).
ENDPOINT_ISSUER = URL.rstrip("/")
DOMAIN = "https://auth.example.com"
#: The CloudFormation service role infra/deploy-role.json creates for dev.
SERVICE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/gatehouse-deploy-dev-cloudformation"


def _function(stage: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "./deployment.zip",
            "Environment": {"Variables": {"GATEHOUSE_STAGE": stage}},
        },
    }


def write_package(directory: Path, stage: str = "dev", padding: int = 0) -> Path:
    """A package as ``chalice package`` lays it out: two functions sharing the app's
    zip, the layer's zip beside it, our parameters. ``padding`` grows the template."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "deployment.zip").write_bytes(b"app code " + stage.encode())
    (directory / "layer-deployment.zip").write_bytes(b"layer " * 1000)
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "x" * padding,
        "Parameters": {
            "Stage": {"Type": "String", "AllowedValues": ["dev", "prod"]},
            "WebAcl": {"Type": "String", "AllowedValues": ["true", "false"], "Default": "false"},
            "LogRetentionDays": {"Type": "Number", "Default": 90},
            "Issuer": {"Type": "String", "Default": ""},
        },
        "Resources": {
            "ManagedLayer": {
                "Type": "AWS::Serverless::LayerVersion",
                "Properties": {"ContentUri": "./layer-deployment.zip"},
            },
            "APIHandler": _function(stage),
            "Bearer": _function(stage),
            "ApiHandlerRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        },
    }
    (directory / "sam.json").write_text(json.dumps(template), encoding="utf-8")
    return directory


class Cloud:
    """moto's S3 and STS, and a stubbed CloudFormation client whose requests are
    recorded as sent."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        self.stub = Stubber(cloudformation)
        self.sent: dict[str, list[dict[str, Any]]] = {}

        def record(**kwargs: Any) -> None:
            self.sent.setdefault(kwargs["model"].name, []).append(dict(kwargs["params"]))

        cloudformation.meta.events.register("provide-client-params.cloudformation.*", record)
        self.clients = deploy.Clients(
            s3=self.s3,
            cloudformation=cloudformation,
            sts=boto3.client("sts", region_name=REGION),
            region=REGION,
        )

    def run(self, package: Path, *options: str) -> int:
        argv = ["--stage", "dev", "--package-dir", str(package), "--poll-seconds", "0"]
        with self.stub:
            status = deploy.main([*argv, *options], self.clients)
            self.stub.assert_no_pending_responses()
        return status

    def stack(self, status: str, parameters: dict[str, str] | None = None) -> None:
        """The next DescribeStacks answer."""
        stack: dict[str, Any] = {
            "StackName": STACK,
            "StackId": STACK_ID,
            "CreationTime": STARTED,
            "StackStatus": status,
            "Parameters": [
                {"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()
            ],
            "Outputs": [{"OutputKey": "EndpointURL", "OutputValue": URL}],
        }
        self.stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})

    def no_stack(self) -> None:
        self.stub.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message=f"Stack with id {STACK} does not exist",
            http_status_code=400,
        )

    def change_set(
        self,
        kind: str,
        parameters: list[dict[str, Any]],
        location: str = "TemplateURL",
        role: str | None = None,
    ) -> None:
        """CreateChangeSet, as expected (with ``RoleARN`` only when ``role`` is given);
        the template is checked from ``sent``."""
        expected = {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": kind,
            "Parameters": parameters,
            "Capabilities": CAPABILITIES,
            "Description": ANY,
            location: ANY,
            **({"RoleARN": role} if role else {}),
        }
        self.stub.add_response(
            "create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, expected
        )

    def change_set_status(self, status: str, reason: str = "") -> None:
        answer = {
            "ChangeSetId": CHANGE_SET,
            "StackName": STACK,
            "Status": status,
            "StatusReason": reason,
            "CreationTime": STARTED,
        }
        self.stub.add_response("describe_change_set", answer, {"ChangeSetName": CHANGE_SET})

    def executed(self) -> None:
        expected = {"ChangeSetName": CHANGE_SET, "RetainExceptOnCreate": True}
        self.stub.add_response("execute_change_set", {}, expected)

    def template_sent(self) -> dict[str, Any]:
        """The template CreateChangeSet named, read back from the bucket."""
        [request, *again] = self.sent["CreateChangeSet"]
        assert all(r["TemplateURL"] == request["TemplateURL"] for r in again)
        url = urlsplit(request["TemplateURL"])
        assert url.scheme == "https"
        bucket = url.netloc.split(".s3.")[0]
        body = self.s3.get_object(Bucket=bucket, Key=unquote(url.path[1:]))["Body"].read()
        template: dict[str, Any] = json.loads(body)
        return template


def _over_https(bucket: FakeBucket, action: str, resource: str) -> Any:
    """moto's bucket policy check, for a request over HTTPS (what botocore sends).

    moto applies a bucket policy's statements without their conditions (its
    ``put_bucket_policy`` says so), so the TLS-only Deny would refuse every request; AWS
    evaluates ``aws:SecureTransport`` and the Deny matches plain HTTP only. This drops
    the statements conditioned on plain HTTP and lets moto judge the rest."""
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(bucket.policy)
    plain_http = {"Bool": {"aws:SecureTransport": "false"}}
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Condition") != plain_http]
    if not policy["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)


@pytest.fixture
def cloud(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    monkeypatch.delenv("DEPLOY_BUCKET", raising=False)
    monkeypatch.setattr(FakeBucket, "get_permission", _over_https)
    yield Cloud()


PARAMETERS = [
    {"ParameterKey": "Issuer", "ParameterValue": DOMAIN},
    {"ParameterKey": "LogRetentionDays", "ParameterValue": "30"},
    {"ParameterKey": "Stage", "ParameterValue": "dev"},
    {"ParameterKey": "WebAcl", "ParameterValue": "true"},
]
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


def test_a_first_deploy_creates_the_bucket_uploads_and_creates_the_stack(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = write_package(tmp_path / "package", padding=deploy.MAX_TEMPLATE_BODY)
    monkeypatch.setenv("PARAM_LogRetentionDays", "30")
    monkeypatch.setenv("PARAM_Issuer", DOMAIN + "/")  # a custom domain: one step
    cloud.no_stack()
    cloud.change_set("CREATE", PARAMETERS)
    cloud.change_set_status("CREATE_PENDING")
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack("CREATE_IN_PROGRESS")
    cloud.stack("CREATE_COMPLETE")
    cloud.stack("CREATE_COMPLETE")  # the outputs

    assert cloud.run(package, "--parameter", "WebAcl=true") == 0

    assert f"EndpointURL: {URL}" in capsys.readouterr().out
    s3 = cloud.s3
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
        True,
    )
    [rule] = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [deny] = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Too large for the request: the template went through the bucket, and every
    # artifact it names is there, byte for byte.
    template = cloud.template_sent()
    uris = {
        name: resource["Properties"].get("CodeUri") or resource["Properties"].get("ContentUri")
        for name, resource in template["Resources"].items()
        if resource["Type"] in deploy.LOCAL_ARTIFACTS
    }
    assert set(uris) == {"ManagedLayer", "APIHandler", "Bearer"}
    assert uris["APIHandler"] == uris["Bearer"]
    files = {"ManagedLayer": "layer-deployment.zip", "APIHandler": "deployment.zip"}
    for name, file in files.items():
        assert uris[name].startswith(f"s3://{BUCKET}/{STACK}/")
        key = uris[name].removeprefix(f"s3://{BUCKET}/")
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (package / file).read_bytes()
    assert json.loads((package / "packaged.json").read_text(encoding="utf-8")) == template


def test_a_redeploy_without_changes_uploads_nothing_and_keeps_the_parameters(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A parameter not given keeps the stack's value (UsePreviousValue), and
    CloudFormation's "no changes" is a success; the content-addressed artifacts are
    not uploaded again (the versioned bucket holds one version of each)."""
    package = write_package(tmp_path / "package")
    previous = {"Stage": "dev", "WebAcl": "true", "LogRetentionDays": "30", "Issuer": DOMAIN}
    for _ in range(2):
        cloud.stack("UPDATE_COMPLETE", previous)
        expected: list[dict[str, Any]] = [
            {"ParameterKey": "Stage", "ParameterValue": "dev"},
            {"ParameterKey": "WebAcl", "UsePreviousValue": True},
            {"ParameterKey": "LogRetentionDays", "UsePreviousValue": True},
            {"ParameterKey": "Issuer", "UsePreviousValue": True},
        ]
        cloud.change_set("UPDATE", expected, "TemplateBody")
        cloud.change_set_status(
            "FAILED",
            "The submitted information didn't contain changes. Submit different "
            "information to create a change set.",
        )
        cloud.stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
        cloud.stack("UPDATE_COMPLETE", previous)
        assert cloud.run(package) == 0

    assert "no changes" in capsys.readouterr().out
    # Small enough to travel in the request.
    assert [set(r) & {"TemplateBody", "TemplateURL"} for r in cloud.sent["CreateChangeSet"]] == [
        {"TemplateBody"}
    ] * 2
    versions = cloud.s3.list_object_versions(Bucket=BUCKET)["Versions"]
    assert len(versions) == len({v["Key"] for v in versions}) == 2


def test_a_failed_update_prints_its_failed_events_and_exits_1(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = write_package(tmp_path / "package", padding=deploy.MAX_TEMPLATE_BODY)
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": DOMAIN})
    cloud.change_set(
        "UPDATE",
        [
            {"ParameterKey": "Stage", "ParameterValue": "dev"},
            {"ParameterKey": "Issuer", "UsePreviousValue": True},
        ],
    )
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack("UPDATE_ROLLBACK_IN_PROGRESS")
    cloud.stack("UPDATE_ROLLBACK_COMPLETE")

    def event(seconds: int, resource: str, status: str, reason: str) -> dict[str, Any]:
        return {
            "StackId": STACK_ID,
            "EventId": f"{resource}-{seconds}",
            "StackName": STACK,
            "LogicalResourceId": resource,
            "ResourceType": "AWS::DynamoDB::Table",
            "Timestamp": STARTED + timedelta(seconds=seconds),
            "ResourceStatus": status,
            "ResourceStatusReason": reason,
        }

    events = [  # newest first, as CloudFormation lists them
        event(60, STACK, "UPDATE_ROLLBACK_COMPLETE", ""),
        event(30, "Table", "UPDATE_FAILED", "Table already exists: gatehouse-dev"),
        event(10, "Table", "UPDATE_IN_PROGRESS", ""),
        event(-600, "Old", "CREATE_FAILED", "an earlier deployment's failure"),
    ]
    cloud.stub.add_response("describe_stack_events", {"StackEvents": events}, {"StackName": STACK})

    assert cloud.run(package) == 1

    err = capsys.readouterr().err
    assert "stack UPDATE_ROLLBACK_COMPLETE" in err
    assert "Table (AWS::DynamoDB::Table): UPDATE_FAILED: Table already exists" in err
    assert "earlier" not in err


def test_a_stack_whose_creation_failed_must_be_deleted_first(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.stack("ROLLBACK_COMPLETE")
    assert cloud.run(write_package(tmp_path / "package")) == 2
    assert f"delete-stack --stack-name {STACK}" in capsys.readouterr().err
    assert "CreateChangeSet" not in cloud.sent


def test_a_named_bucket_is_used_never_created(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DEPLOY_BUCKET", "my-missing-artifacts")
    cloud.no_stack()
    assert cloud.run(write_package(tmp_path / "package")) == 2
    assert "my-missing-artifacts" in capsys.readouterr().err
    assert cloud.s3.list_buckets()["Buckets"] == []


def test_a_package_of_another_stage_or_none_is_refused(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cloud.run(write_package(tmp_path / "prod", stage="prod")) == 2
    assert "packaged for stage 'prod'" in capsys.readouterr().err
    assert cloud.run(tmp_path / "nothing") == 2
    assert "make package STAGE=dev" in capsys.readouterr().err


def _deployed(
    cloud: Cloud, kind: str, parameters: list[dict[str, Any]], role: str | None = None
) -> None:
    """One change set of ``kind`` created, executed and completed."""
    cloud.change_set(kind, parameters, role=role)
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack(f"{kind}_IN_PROGRESS")
    cloud.stack(f"{kind}_COMPLETE")


def test_a_first_deploy_without_an_issuer_sets_it_from_the_new_stacks_url(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The functions cannot name the API (a cycle), and its URL exists only once the
    stack does: the stack is created with none, then updated with its EndpointURL.
    Nothing is signed in between (the new key secrets are empty until rotate-key)."""
    package = write_package(tmp_path / "package", padding=deploy.MAX_TEMPLATE_BODY)
    cloud.no_stack()
    _deployed(cloud, "CREATE", [{"ParameterKey": "Stage", "ParameterValue": "dev"}])
    cloud.stack("CREATE_COMPLETE", {"Stage": "dev", "Issuer": ""})  # its outputs
    _deployed(
        cloud,
        "UPDATE",
        [
            {"ParameterKey": "Issuer", "ParameterValue": ENDPOINT_ISSUER},
            {"ParameterKey": "Stage", "ParameterValue": "dev"},
        ],
    )
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": ENDPOINT_ISSUER})

    assert cloud.run(package) == 0

    out = capsys.readouterr().out
    assert f"setting Issuer to the new stack's EndpointURL, {ENDPOINT_ISSUER}" in out
    assert "PARAM_Issuer=https://" in out
    assert [r["ChangeSetType"] for r in cloud.sent["CreateChangeSet"]] == ["CREATE", "UPDATE"]
    assert set(cloud.template_sent()["Resources"]) == {
        "ManagedLayer",
        "APIHandler",
        "Bearer",
        "ApiHandlerRole",
    }  # uploaded once, named by both change sets


@pytest.mark.parametrize("given", ["option", "environment"])
def test_every_change_set_runs_as_the_service_role_given(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given: str,
) -> None:
    """``--role-arn`` or ``DEPLOY_ROLE_ARN`` names the role CloudFormation creates the
    resources as (the deploy role of GitHub Actions may only pass it): both change sets
    of a two-step first deploy carry it."""
    package = write_package(tmp_path / "package", padding=deploy.MAX_TEMPLATE_BODY)
    options = ["--role-arn", SERVICE_ROLE] if given == "option" else []
    if given == "environment":
        monkeypatch.setenv("DEPLOY_ROLE_ARN", SERVICE_ROLE)
    cloud.no_stack()
    stage = [{"ParameterKey": "Stage", "ParameterValue": "dev"}]
    _deployed(cloud, "CREATE", stage, SERVICE_ROLE)
    cloud.stack("CREATE_COMPLETE", {"Stage": "dev", "Issuer": ""})
    issuer = [{"ParameterKey": "Issuer", "ParameterValue": ENDPOINT_ISSUER}]
    _deployed(cloud, "UPDATE", issuer + stage, SERVICE_ROLE)
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": ENDPOINT_ISSUER})

    assert cloud.run(package, *options) == 0

    assert [r["RoleARN"] for r in cloud.sent["CreateChangeSet"]] == [SERVICE_ROLE] * 2
    assert f"CloudFormation acting as {SERVICE_ROLE}" in capsys.readouterr().out


def test_without_a_role_the_change_set_names_none(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty ``DEPLOY_ROLE_ARN`` is none given (as an empty ``DEPLOY_BUCKET`` is):
    CloudFormation uses the caller's credentials, or the role the stack already has."""
    monkeypatch.setenv("DEPLOY_ROLE_ARN", "")
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": DOMAIN})
    stage = [{"ParameterKey": "Stage", "ParameterValue": "dev"}]
    cloud.change_set(
        "UPDATE", [*stage, {"ParameterKey": "Issuer", "UsePreviousValue": True}], "TemplateBody"
    )
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack("UPDATE_COMPLETE")
    cloud.stack("UPDATE_COMPLETE")

    assert cloud.run(write_package(tmp_path / "package")) == 0

    assert "RoleARN" not in cloud.sent["CreateChangeSet"][0]


@pytest.mark.parametrize(
    "role",
    [
        "gatehouse-deploy-dev-cloudformation",
        f"arn:aws:iam::{ACCOUNT}:user/deployer",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/gatehouse-deploy-dev-github/run",
        "arn:aws:iam::12345:role/short-account",
    ],
)
def test_a_role_that_is_not_an_iam_role_arn_is_refused_before_anything_happens(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    assert cloud.run(write_package(tmp_path / "package"), "--role-arn", role) == 2

    assert "is not an IAM role ARN" in capsys.readouterr().err
    assert cloud.sent == {}
    assert cloud.s3.list_buckets()["Buckets"] == []


def test_a_stack_without_an_issuer_gets_its_endpoint_url_in_one_step(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack deployed before the parameter existed (or whose first deploy stopped
    after its first step) already has its URL."""
    package = write_package(tmp_path / "package")
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "WebAcl": "true"})
    cloud.change_set(
        "UPDATE",
        [
            {"ParameterKey": "Issuer", "ParameterValue": ENDPOINT_ISSUER},
            {"ParameterKey": "Stage", "ParameterValue": "dev"},
            {"ParameterKey": "WebAcl", "UsePreviousValue": True},
        ],
        "TemplateBody",
    )
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack("UPDATE_COMPLETE")
    cloud.stack("UPDATE_COMPLETE")  # the outputs

    assert cloud.run(package) == 0

    assert f"Issuer: {ENDPOINT_ISSUER} (the stack's EndpointURL)" in capsys.readouterr().out


def test_a_given_issuer_replaces_the_stacks(cloud: Cloud, tmp_path: Path) -> None:
    package = write_package(tmp_path / "package")
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": ENDPOINT_ISSUER})
    cloud.change_set(
        "UPDATE",
        [
            {"ParameterKey": "Issuer", "ParameterValue": DOMAIN},
            {"ParameterKey": "Stage", "ParameterValue": "dev"},
        ],
        "TemplateBody",
    )
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack("UPDATE_COMPLETE")
    cloud.stack("UPDATE_COMPLETE")

    assert cloud.run(package, "--parameter", f"Issuer={DOMAIN}") == 0


@pytest.mark.parametrize(
    "issuer",
    [
        "",
        "http://auth.example.com",
        "auth.example.com",
        "https://",
        "https:///api",
        "https://auth.example.com/?next=1",
        "https://auth.example.com/#top",
        "https://auth example.com",
        "ftp://auth.example.com",
    ],
)
def test_an_issuer_that_is_not_https_is_refused_before_anything_happens(
    cloud: Cloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    issuer: str,
) -> None:
    monkeypatch.setenv("PARAM_Issuer", issuer)

    assert cloud.run(write_package(tmp_path / "package")) == 2

    err = capsys.readouterr().err
    assert "is not an https URL: pass PARAM_Issuer=https://" in err
    assert "EndpointURL" in err
    assert cloud.sent == {}
    assert cloud.s3.list_buckets()["Buckets"] == []


TEMPLATE = {
    "Parameters": {
        "Stage": {"AllowedValues": ["dev", "prod"]},
        "WebAcl": {"AllowedValues": ["true", "false"]},
        "LogRetentionDays": {"AllowedValues": [30, 90]},
        "ApiKeyRequired": {},
    }
}


def test_parameters_come_from_the_stage_the_environment_and_the_options() -> None:
    environ = {"PARAM_WebAcl": "false", "PARAM_LogRetentionDays": "30", "HOME": "/root"}
    options = ["WebAcl=true", "ApiKeyRequired=a=b"]
    assert deploy.parameters(TEMPLATE, "prod", environ, options) == {
        "Stage": "prod",
        "WebAcl": "true",  # the option wins
        "LogRetentionDays": "30",  # numbers compare as CloudFormation's strings
        "ApiKeyRequired": "a=b",  # split at the first "=" only
    }


@pytest.mark.parametrize(
    ("environ", "options", "message"),
    [
        ({}, ["WebAcl"], "expected Name=value"),
        ({}, ["=true"], "expected Name=value"),
        ({"PARAM_Stage": "prod"}, [], "contradicts --stage dev"),
        ({}, ["Stage=prod"], "contradicts --stage dev"),
        ({}, ["WebACL=true"], "no parameter 'WebACL'"),
        ({"PARAM_WebAcl": "yes"}, [], "allowed values are true, false"),
        ({}, ["LogRetentionDays=31"], "allowed values are 30, 90"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_uploaded(
    environ: dict[str, str], options: list[str], message: str
) -> None:
    with pytest.raises(deploy.DeployError, match=message):
        deploy.parameters(TEMPLATE, "dev", environ, options)


def test_named_iam_is_asked_for_only_when_a_resource_names_itself() -> None:
    role: dict[str, Any] = {"Type": "AWS::IAM::Role", "Properties": {}}
    assert deploy.capabilities({"Resources": {"Role": role}}) == CAPABILITIES
    role["Properties"]["RoleName"] = "gatehouse-dev-api"
    assert deploy.capabilities({"Resources": {"Role": role}}) == [
        "CAPABILITY_IAM",
        "CAPABILITY_NAMED_IAM",
        "CAPABILITY_AUTO_EXPAND",
    ]


#: IAM's action for an S3 call that is not named after it.
S3_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
}


def test_the_github_deploy_role_grants_exactly_what_a_deploy_calls(
    cloud: Cloud, tmp_path: Path
) -> None:
    """The calls a first deploy (bucket created, template through it), a redeploy with
    no changes and a failed update make, as IAM actions, are what infra/deploy-role.json
    lets the dev GitHub role do, and PassRole (CloudFormation checks it for the RoleARN
    of CreateChangeSet; tests/unit/test_deploy_role.py checks which role, and the SAM
    transform's CreateChangeSet). The bucket and every object written are the ones the
    role names."""
    called: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        prefix = model.service_model.service_name
        called.add(S3_ACTIONS.get(model.name, f"{prefix}:{model.name}"))

    for client in (cloud.s3, cloud.clients.cloudformation, cloud.clients.sts):
        client.meta.events.register("provide-client-params", record)
    package = write_package(tmp_path / "package", padding=deploy.MAX_TEMPLATE_BODY)
    role = ["--role-arn", SERVICE_ROLE]
    stage = {"ParameterKey": "Stage", "ParameterValue": "dev"}
    issuer = {"ParameterKey": "Issuer", "ParameterValue": DOMAIN}
    cloud.no_stack()
    _deployed(cloud, "CREATE", [issuer, stage], SERVICE_ROLE)
    cloud.stack("CREATE_COMPLETE")
    assert cloud.run(package, "--parameter", f"Issuer={DOMAIN}", *role) == 0
    kept: list[dict[str, Any]] = [stage, {"ParameterKey": "Issuer", "UsePreviousValue": True}]
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": DOMAIN})
    cloud.change_set("UPDATE", kept, role=SERVICE_ROLE)
    cloud.change_set_status("FAILED", "The submitted information didn't contain changes.")
    cloud.stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": DOMAIN})
    assert cloud.run(package, *role) == 0
    cloud.stack("UPDATE_COMPLETE", {"Stage": "dev", "Issuer": DOMAIN})
    cloud.change_set("UPDATE", kept, role=SERVICE_ROLE)
    cloud.change_set_status("CREATE_COMPLETE")
    cloud.executed()
    cloud.stack("UPDATE_ROLLBACK_COMPLETE")
    cloud.stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK})
    assert cloud.run(package, *role) == 1

    template = json.loads((deploy.ROOT / "infra" / "deploy-role.json").read_text(encoding="utf-8"))
    [policy] = template["Resources"]["DevGitHubRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    assert {a for s in statements for a in s["Action"]} == called | {"iam:PassRole"}

    def resources(action: str) -> list[str]:
        pseudo = {
            "${AWS::Partition}": "aws",
            "${AWS::Region}": REGION,
            "${AWS::AccountId}": ACCOUNT,
        }
        named = [r["Fn::Sub"] for s in statements if action in s["Action"] for r in s["Resource"]]
        for name, value in pseudo.items():
            named = [n.replace(name, value) for n in named]
        return named

    assert resources("s3:CreateBucket") == [f"arn:aws:s3:::{BUCKET}"]
    [objects] = resources("s3:PutObject")
    keys = [o["Key"] for o in cloud.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys
    assert all(fnmatchcase(f"arn:aws:s3:::{BUCKET}/{key}", objects) for key in keys)
