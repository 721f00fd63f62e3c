"""infra/deploy-role.json, the roles GitHub Actions deploys with: who may assume them,
that the GitHub role can only pass its stage's CloudFormation service role, and that the
service role covers what CloudFormation's handlers call for the stack's resource types
(from the registry schemas cfn-lint ships) on names of its own stage, wider only where
the template says why. cfn-lint checks the template itself (make lint); what a deploy
calls with the GitHub role is checked in tests/unit/test_deploy.py. Nothing here has
been tried against IAM: these are the template's promises, checked offline."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # type: ignore[import-untyped]

from scripts import render_infra

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "deploy-role.json"
STAGES = ("dev", "prod")
OIDC = "token.actions.githubusercontent.com"
#: The account's provider for GitHub, created here or not: IAM has one per URL.
PROVIDER = "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/" + OIDC
#: What ``${AWS::...}`` stands for when a pattern is matched against a name.
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}

#: The resource types Chalice adds to infra/template.json's in the packaged template
#: (tests/e2e/test_package.py checks the real package has no other).
CHALICE_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::Api",
    "AWS::IAM::Role",
    "AWS::Lambda::Permission",
}
#: What the SAM transform turns Chalice's types into (the functions' roles are Chalice's
#: own), and the functions' events (the mail function's SQS subscription).
SAM_EXPANDS = {
    "AWS::Serverless::Function": {"AWS::Lambda::Function"},
    "AWS::Serverless::LayerVersion": {"AWS::Lambda::LayerVersion"},
    "AWS::Serverless::Api": {
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
    },
}
SAM_EVENTS = {
    "SQS": {"AWS::Lambda::EventSourceMapping"},
    "Schedule": {"AWS::Events::Rule", "AWS::Lambda::Permission"},
}
#: Permissions the handlers list for features of a type the stack does not use; the
#: service role leaves them out (fnmatch patterns).
NOT_USED = {
    # A resource policy on the API.
    "AWS::ApiGateway::RestApi": {"apigateway:UpdateRestApiPolicy"},
    "AWS::DynamoDB::Table": {
        "dynamodb:*TableReplica",  # global tables
        "iam:CreateServiceLinkedRole",
        "dynamodb:EnableKinesisStreamingDestination",  # Kinesis streams
        "dynamodb:DisableKinesisStreamingDestination",
        "dynamodb:UpdateKinesisStreamingDestination",
        "kinesis:*",
        "dynamodb:ImportTable",  # an import from S3, and its log
        "dynamodb:DescribeImport",
        "s3:GetObjectMetadata",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
        "dynamodb:PutResourcePolicy",  # a resource policy
        "dynamodb:DeleteResourcePolicy",
        "dynamodb:UpdateContributorInsights",
        # CloudFormation never reads or writes the table's items.
        "dynamodb:*Item",
        "dynamodb:Query",
        "dynamodb:Scan",
    },
    # Inline policies of groups and users; permissions boundaries.
    "AWS::IAM::Policy": {"iam:*GroupPolicy", "iam:*UserPolicy"},
    "AWS::IAM::Role": {"iam:*RolePermissionsBoundary"},
    "AWS::Lambda::Function": {
        "ec2:*",  # a VPC
        "elasticfilesystem:*",
        "s3files:*",
        "lambda:GetCodeSigningConfig",  # code signing
        "lambda:PutFunctionCodeSigningConfig",
        "lambda:DeleteFunctionCodeSigningConfig",
        "lambda:AssociateRuntimeAlias",  # capacity providers and scaling
        "lambda:PassCapacityProvider",
        "lambda:PutFunctionScalingConfig",
        "lambda:PublishVersion",  # versions and aliases
    },
    "AWS::Logs::LogGroup": {
        "logs:CreateLogDelivery",  # deliveries, data protection, field indexes,
        "logs:PutDataProtectionPolicy",  # resource policies, bearer tokens, deletion protection
        "logs:DeleteDataProtectionPolicy",
        "logs:*IndexPolicy",
        "logs:*ResourcePolicy",
        "logs:PutBearerTokenAuthentication",
        "logs:PutLogGroupDeletionProtection",
        "s3:REST.PUT.OBJECT",
    },
    # Everything the audit bucket does not set: versioning, replication, logging,
    # notifications, websites, CORS, ACLs, object lock, inventories, metrics, analytics,
    # acceleration, intelligent tiering, ABAC, metadata tables, S3 Tables.
    "AWS::S3::Bucket": {
        "s3:PutBucketVersioning",
        "s3:Put*Replication*",
        "s3:DeleteBucketReplication",
        "s3:PutBucketLogging",
        "s3:PutBucketNotification",
        "s3:PutBucketWebsite",
        "s3:DeleteBucketWebsite",
        "s3:PutBucketCORS",
        "s3:DeleteBucketCors",
        "s3:Put*Acl",
        "s3:Put*ObjectLock*",
        "s3:DeleteObject",
        "s3:PutInventoryConfiguration",
        "s3:PutMetricsConfiguration",
        "s3:DeleteBucketMetricsConfiguration",
        "s3:PutAnalyticsConfiguration",
        "s3:DeleteBucketAnalyticsConfiguration",
        "s3:PutAccelerateConfiguration",
        "s3:PutIntelligentTieringConfiguration",
        "s3:PutBucketAbac",
        "s3:CreateBucketMetadata*",
        "s3:DeleteBucketMetadata*",
        "s3:UpdateBucketMetadata*",
        "s3:DeleteBucketEncryption",
        "s3:DeleteBucketLifecycle",
        "s3tables:*",
    },
    # Data protection and subscriptions on the alarm topic.
    "AWS::SNS::Topic": {"sns:PutDataProtectionPolicy", "sns:Subscribe", "sns:Unsubscribe"},
    # Generated secret values and replicas.
    "AWS::SecretsManager::Secret": {
        "secretsmanager:GetRandomPassword",
        "secretsmanager:*Replicat*",
        "secretsmanager:RemoveRegionsFromReplication",
    },
    "AWS::WAFv2::WebACL": {"payments:*"},
    # Associations with anything but an API Gateway stage.
    "AWS::WAFv2::WebACLAssociation": {
        "amplify:*",
        "apprunner:*",
        "appsync:*",
        "bedrock-agentcore:*",
        "cognito-idp:*",
        "ec2:*",
        "elasticloadbalancing:*",
        "wafv2:*PermissionPolicy",
    },
}
#: The service role's statements that name no resource of their stage, and why (the
#: template's Description and Metadata.Wider say the same).
WIDER = {
    "CreateTheDataKey": "a key's ARN is an id that exists only after CreateKey",
    "ManageKeysById": "keys are named by id",
    "DataKeyAlias": "CreateAlias also needs the key, named by id",
    "UseKeysOnlyThroughTheStacksServices": "by id, and only through the stack's services",
    "MailQueueSubscriptionForTheStagesFunctionsOnly": "mappings are ids; the function is ours",
    "EventSourceMappingsById": "mappings are ids",
    "RestApisKeysAndUsagePlansById": "API Gateway's ARNs are ids",
    "ApiGatewayAccountLoggingRole": "the region's API Gateway settings",
    "WebAclOnTheApiStage": "the API's stage, by the API's id",
    "WebAclAndItsAssociation": "AWS's managed rule groups, and the API's stage by id",
    "DescribeCallsWithNoResource": "calls with no resource to name",
}


def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    return loaded


def _resources_of_stage(stage: str) -> dict[str, dict[str, Any]]:
    prefix = stage.capitalize()
    return {k: v for k, v in _template()["Resources"].items() if k.startswith(prefix)}


def _github_role(stage: str) -> dict[str, Any]:
    role: dict[str, Any] = _template()["Resources"][f"{stage.capitalize()}GitHubRole"]
    properties: dict[str, Any] = role["Properties"]
    return properties


def _service_role_name(stage: str) -> str:
    return f"{stage.capitalize()}CloudFormationRole"


def _service_policies(stage: str) -> list[dict[str, Any]]:
    """The managed policies attached to the stage's CloudFormation service role."""
    role = {"Ref": _service_role_name(stage)}
    return [
        r["Properties"]
        for r in _template()["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and role in r["Properties"]["Roles"]
    ]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def _service_statements(stage: str) -> list[dict[str, Any]]:
    return [s for p in _service_policies(stage) for s in _statements(p["PolicyDocument"])]


def _github_statements(stage: str) -> list[dict[str, Any]]:
    [policy] = _github_role(stage)["Policies"]
    return _statements(policy["PolicyDocument"])


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in _listed(s["Action"])}


def _resolved(value: Any) -> str:
    """A resource as IAM sees it, with the pseudo parameters filled in."""
    if isinstance(value, dict):
        [(function, argument)] = value.items()
        assert function == "Fn::Sub", value
        return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO[m[1]], argument)
    assert isinstance(value, str)
    return value


def _every_document() -> Iterator[dict[str, Any]]:
    for resource in _template()["Resources"].values():
        properties = resource["Properties"]
        for key in ("AssumeRolePolicyDocument", "PolicyDocument"):
            if key in properties:
                yield properties[key]
        for policy in properties.get("Policies", []):
            yield policy["PolicyDocument"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_github_role_trusts_only_its_environment_with_the_sts_audience(stage: str) -> None:
    """``StringEquals`` on both claims: no wildcard, so neither another repository, nor
    a branch, a pull request or the other stage's environment can assume it."""
    [statement] = _statements(_github_role(stage)["AssumeRolePolicyDocument"])
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {
        "Federated": {
            "Fn::If": [
                "CreateProvider",
                {"Ref": "GitHubOidcProvider"},
                {"Fn::Sub": PROVIDER},
            ]
        }
    }
    assert statement["Condition"] == {
        "StringEquals": {
            f"{OIDC}:aud": "sts.amazonaws.com",
            f"{OIDC}:sub": {"Fn::Sub": "repo:${GitHubOwner}/${GitHubRepo}:environment:" + stage},
        }
    }


def test_the_oidc_provider_is_github_for_sts_and_optional() -> None:
    template = _template()
    provider = template["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateProvider"
    assert provider["Properties"] == {
        "Url": f"https://{OIDC}",
        "ClientIdList": ["sts.amazonaws.com"],
    }
    assert template["Conditions"]["CreateProvider"] == {
        "Fn::Equals": [{"Ref": "CreateOidcProvider"}, "true"]
    }
    assert template["Parameters"]["CreateOidcProvider"]["AllowedValues"] == ["true", "false"]


def test_no_statement_allows_a_wildcard_action_or_negates() -> None:
    for document in _every_document():
        for statement in _statements(document):
            assert statement["Effect"] == "Allow"
            assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
            for action in _listed(statement["Action"]):
                assert "*" not in action, statement.get("Sid", action)


@pytest.mark.parametrize("stage", STAGES)
def test_the_github_role_passes_only_its_service_role_and_only_to_cloudformation(
    stage: str,
) -> None:
    """Nothing else of IAM, and change sets only as that role (``cloudformation:RoleArn``):
    the GitHub role cannot run a change set with its own permissions or another role's."""
    service_role = {"Fn::GetAtt": [_service_role_name(stage), "Arn"]}
    statements = _github_statements(stage)
    [passes] = [s for s in statements if any(a.startswith("iam:") for a in _listed(s["Action"]))]
    assert passes["Action"] == ["iam:PassRole"]
    assert passes["Resource"] == service_role
    assert passes["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
    }
    stack = f"arn:aws:cloudformation:us-east-1:123456789012:stack/gatehouse-{stage}/1"
    creating = [s for s in statements if "cloudformation:CreateChangeSet" in s["Action"]]
    on_the_stack = [
        s for s in creating if any(fnmatchcase(stack, _resolved(r)) for r in s["Resource"])
    ]
    assert [s["Condition"] for s in on_the_stack] == [
        {"StringEquals": {"cloudformation:RoleArn": service_role}}
    ]
    [other] = [s for s in creating if s not in on_the_stack]
    assert other["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:transform/"
            "Serverless-2016-10-31"
        }
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_only_cloudformation_assumes_the_service_role(stage: str) -> None:
    role = _template()["Resources"][_service_role_name(stage)]["Properties"]
    assert _statements(role["AssumeRolePolicyDocument"]) == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_the_service_role_names_its_stage_or_the_template_says_why(stage: str) -> None:
    """Every statement names only ``gatehouse-<stage>`` resources (the stack's names, its
    log groups, its artifacts), except those WIDER lists; none names the other stage."""
    other = next(s for s in STAGES if s != stage)
    wider = set()
    for statement in _service_statements(stage):
        resources = [_resolved(r) for r in _listed(statement["Resource"])]
        assert not any(f"gatehouse-{other}" in r for r in resources), statement["Sid"]
        if not all(f"gatehouse-{stage}" in r for r in resources):
            wider.add(statement["Sid"])
    assert wider == set(WIDER)
    description = _template()["Description"]
    for service in ("KMS", "API Gateway", "event source mappings", "WAF"):
        assert service in description


@pytest.mark.parametrize("stage", STAGES)
def test_the_service_role_can_change_neither_itself_nor_the_github_role(stage: str) -> None:
    """The stack's roles are ``gatehouse-<stage>-*``; this template's roles and policies
    are ``gatehouse-deploy-*``, out of the service role's reach (else it could rewrite
    its own policy)."""
    own = [
        f"arn:aws:iam::123456789012:role/{r['Properties']['RoleName']}"
        for r in _template()["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    ] + [
        f"arn:aws:iam::123456789012:policy/{r['Properties']['ManagedPolicyName']}"
        for r in _template()["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    for statement in _service_statements(stage):
        if not any(a.startswith("iam:") for a in statement["Action"]):
            continue
        for resource in _listed(statement["Resource"]):
            pattern = _resolved(resource)
            assert not [arn for arn in own if fnmatchcase(arn, pattern)], statement["Sid"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_service_role_passes_the_stacks_roles_to_their_services_only(stage: str) -> None:
    [passes] = [s for s in _service_statements(stage) if "iam:PassRole" in s["Action"]]
    assert [_resolved(r) for r in passes["Resource"]] == [
        f"arn:aws:iam::123456789012:role/gatehouse-{stage}-*"
    ]
    assert set(passes["Condition"]["StringEquals"]["iam:PassedToService"]) == {
        "lambda.amazonaws.com",  # the functions' roles
        "apigateway.amazonaws.com",  # the API Gateway account's logging role
        "firehose.amazonaws.com",  # the audit stream's delivery role
        "logs.amazonaws.com",  # the audit subscription's role
    }
    [attaches] = [s for s in _service_statements(stage) if "iam:AttachRolePolicy" in s["Action"]]
    assert attaches["Condition"] == {
        "ArnEquals": {
            "iam:PolicyARN": {
                "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs"
            }
        }
    }


def _stack_types() -> set[str]:
    """The resource types CloudFormation creates for a stage: infra/template.json's,
    Chalice's, and what the SAM transform makes of the Serverless ones and their events."""
    rendered = json.loads(render_infra.TEMPLATE.read_text(encoding="utf-8"))
    types = {r["Type"] for r in rendered["Resources"].values() if "Type" in r} | CHALICE_TYPES
    expanded = {t for kind in types for t in SAM_EXPANDS.get(kind, {kind})}
    return expanded.union(*SAM_EVENTS.values())


def _handler_permissions(kind: str) -> set[str]:
    """What CloudFormation's create, read, update and delete handlers of ``kind`` may
    call (the registry schema's ``handlers``); none for types without handlers."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
    handlers = schema.get("handlers", {})
    return {
        permission
        for handler in ("create", "read", "update", "delete")
        for permission in handlers.get(handler, {}).get("permissions", [])
    }


def _not_used(kind: str, action: str) -> bool:
    return any(fnmatchcase(action, pattern) for pattern in NOT_USED.get(kind, ()))


@pytest.mark.parametrize("stage", STAGES)
def test_the_service_role_grants_what_the_stacks_handlers_call_and_nothing_else(
    stage: str,
) -> None:
    """Every permission a handler of one of the stack's types lists is granted, but for
    the features NOT_USED names; and nothing is granted that no handler lists. A new
    resource type in infra/base.json fails here until the role covers it."""
    granted = _actions(_service_statements(stage))
    types = _stack_types()
    assert set(NOT_USED) <= types, "NOT_USED names a type the stack does not have"
    listed: set[str] = set()
    for kind in sorted(types):
        permissions = _handler_permissions(kind)
        listed |= permissions
        missing = {p for p in permissions - granted if not _not_used(kind, p)}
        assert not missing, f"{kind}: {sorted(missing)}"
        assert not {p for p in permissions & granted if _not_used(kind, p)}, kind
    assert granted <= listed, sorted(granted - listed)


def _size(document: dict[str, Any]) -> int:
    """A policy's size as IAM counts it (no whitespace), with long pseudo parameters."""
    long = {"AWS::Partition": "aws-us-gov", "AWS::Region": "ap-southeast-5"}
    text = json.dumps(document)
    text = re.sub(r"\$\{(AWS::[A-Za-z]+)\}", lambda m: long.get(m[1], PSEUDO.get(m[1], "")), text)
    return len(re.sub(r"\s", "", text))


def test_each_policy_fits_iams_size_limits() -> None:
    """6,144 characters a managed policy, 10,240 for a role's inline policies."""
    for resource in _template()["Resources"].values():
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            assert _size(properties["PolicyDocument"]) < 6144
        if resource["Type"] == "AWS::IAM::Role":
            inline = sum(_size(p["PolicyDocument"]) for p in properties.get("Policies", []))
            assert inline < 10240


def test_dev_and_prod_differ_only_in_the_stage() -> None:
    dev = json.dumps(_resources_of_stage("dev")).replace("dev", "prod").replace("Dev", "Prod")
    assert json.loads(dev) == _resources_of_stage("prod")
