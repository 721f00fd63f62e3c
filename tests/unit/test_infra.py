"""infra/template.json: rendered from infra/base.json and the gateway table, and what
it promises (table, key, secret, gateway answers, alarms)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import app as gatehouse
from chalicelib.edge import gateway, http, middleware
from chalicelib.platform import errors
from scripts import render_infra


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_infra.TEMPLATE.read_text(encoding="utf-8"))
    return loaded


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def test_the_committed_template_is_the_rendered_one() -> None:
    assert render_infra.TEMPLATE.read_text(encoding="utf-8") == render_infra.render(), (
        "infra/template.json is stale: run .venv/bin/python -m scripts.render_infra"
    )
    assert render_infra.main(["--check"]) == 0


def _responses(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses: dict[str, Any] = body[render_infra.GATEWAY_RESPONSES]
    return responses


def test_a_gateway_response_for_every_row_of_the_table(template: dict[str, Any]) -> None:
    """In the API document (deployed with it), not as separate resources that would wait
    for the next deployment."""
    assert not _of_type(template, "AWS::ApiGateway::GatewayResponse")
    by_type = _responses(template)
    assert set(by_type) == set(gateway.GATEWAY_ANSWERS)
    for response_type, error_class in gateway.GATEWAY_ANSWERS.items():
        props = by_type[response_type]
        error = error_class()
        headers = props["responseParameters"]
        assert props["statusCode"] == str(error.status)
        body = json.loads(props["responseTemplates"]["application/json"])
        assert body == http.problem_document(error)
        assert headers["gatewayresponse.header.Content-Type"] == "'application/problem+json'"
        assert headers["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"
        assert headers["gatewayresponse.header.X-Request-Id"] == "context.requestId"
        www = headers.get("gatewayresponse.header.WWW-Authenticate")
        if error.status == 401:
            assert www == "'Bearer error=\"invalid_token\"'"
        else:
            assert www is None
        retry = headers.get("gatewayresponse.header.Retry-After")
        assert (retry is not None) == (error.status == 503)
        for name, value in headers.items():
            if value != "context.requestId":
                # One static value in single quotes, none inside it.
                assert value[0] == value[-1] == "'" and "'" not in value[1:-1], name


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = [d.split() for d in policy.split(";") if d.strip()]
    return {d[0]: [s for s in d[1:] if s != "'none'"] for d in parsed}


def test_the_gateway_csp_is_the_app_csp_without_quotes(template: dict[str, Any]) -> None:
    """``'none'`` and an empty source list both match nothing, so the gateway's policy
    is the app's with the keyword dropped: the same directives, each matching nothing."""
    app_csp = middleware.DEFAULT_HEADERS["Content-Security-Policy"]
    for props in _responses(template).values():
        value = props["responseParameters"]["gatewayresponse.header.Content-Security-Policy"]
        assert _directives(value[1:-1]) == _directives(app_csp)
        assert _directives(value[1:-1]) == {"default-src": [], "frame-ancestors": []}


def test_a_quote_in_any_other_static_value_is_refused() -> None:
    assert render_infra.static_header("X-Test", "plain") == "'plain'"
    with pytest.raises(ValueError, match="quote"):
        render_infra.static_header("X-Test", "it's")
    with pytest.raises(ValueError, match="quote"):
        render_infra.static_header("Content-Security-Policy", "default-src 'self'")


def test_the_503_says_when_to_retry(template: dict[str, Any]) -> None:
    props = _responses(template)["AUTHORIZER_FAILURE"]
    retry = errors.ServiceUnavailable().retry_after
    assert props["responseParameters"]["gatewayresponse.header.Retry-After"] == f"'{retry}'"


def test_the_table(template: dict[str, Any]) -> None:
    table = template["Resources"]["Table"]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKey"}
    assert props["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert table["DeletionPolicy"] == "Retain"


def test_the_key_and_the_secrets(template: dict[str, Any]) -> None:
    """The signing keys' secret on the stack's KMS key; the public keys' secret beside
    it, named as the stages' PUBLIC_KEYS_SECRET, on the AWS managed key (it holds only
    what the JWKS route publishes). Both retained, both created empty: the first
    ``scripts.admin rotate-key`` writes them."""
    resources = template["Resources"]
    key = resources["DataKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    secret = resources["SigningKeys"]["Properties"]
    assert secret["Name"] == {"Fn::Sub": "gatehouse-${Stage}-signing-keys"}
    assert secret["KmsKeyId"] == {"Ref": "DataKey"}
    public = resources["PublicKeys"]["Properties"]
    assert public["Name"] == {"Fn::Sub": "gatehouse-${Stage}-public-keys"}
    assert "KmsKeyId" not in public
    for name in ("SigningKeys", "PublicKeys"):
        assert resources[name]["Type"] == "AWS::SecretsManager::Secret"
        assert resources[name]["DeletionPolicy"] == resources[name]["UpdateReplacePolicy"]
        assert resources[name]["DeletionPolicy"] == "Retain"
        assert "SecretString" not in resources[name]["Properties"]
        assert "GenerateSecretString" not in resources[name]["Properties"]
    config = json.loads((render_infra.ROOT / ".chalice" / "config.json").read_text("utf-8"))
    for stage in ("dev", "prod"):
        env = config["stages"][stage]["environment_variables"]
        assert env["PUBLIC_KEYS_SECRET"] == public["Name"]["Fn::Sub"].replace("${Stage}", stage)


def test_the_issuer_parameter_reaches_the_api_and_the_authorizer(
    template: dict[str, Any],
) -> None:
    """``ISSUER`` cannot name the API in Chalice's config (the API refers to the
    functions), so it is a stack parameter, merged into the two functions that issue or
    check tokens; the mail handler sends what was queued and needs none. Empty, or an
    https URL without query or fragment."""
    issuer = template["Parameters"]["Issuer"]
    assert (issuer["Type"], issuer["Default"]) == ("String", "")
    resources = template["Resources"]
    for function in ("APIHandler", "Bearer"):
        assert resources[function] == {
            "Properties": {"Environment": {"Variables": {"ISSUER": {"Ref": "Issuer"}}}}
        }
    assert "Properties" not in resources["SendMail"]
    pattern = re.compile(issuer["AllowedPattern"])
    for good in (
        "",
        "https://auth.example.com",
        "https://abc.execute-api.us-east-1.amazonaws.com/api/",
    ):
        assert pattern.fullmatch(good), good
    for bad in ("http://auth.example.com", "https://", "https://a b", "https://a/?x=1", "ftp://a"):
        assert not pattern.fullmatch(bad), bad


def test_the_alarms(template: dict[str, Any]) -> None:
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    gatehouse = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Namespace") == "Gatehouse"
    }
    assert set(gatehouse) == {
        "Throttled",
        "LoginFailed",
        "RefreshReuse",
        "PasskeyCloned",
        "SigningKeyAgeOverPeriod",
        "OAuthClientRefused",
    }
    for props in gatehouse.values():
        assert props["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "Stage"}}]
    age = gatehouse["SigningKeyAgeOverPeriod"]
    # Twice the period, or no report for a while (the schedule stopped): both stuck.
    assert (age["Statistic"], age["Threshold"], age["TreatMissingData"]) == (
        "Maximum",
        2,
        "breaching",
    )
    for each_one_counts in ("RefreshReuse", "PasskeyCloned"):
        alarm = gatehouse[each_one_counts]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "GreaterThanOrEqualToThreshold",
            1,
        )
    rate = alarms["ServerErrorRateAlarm"]["Properties"]["Metrics"]
    assert rate[0]["MetricStat"]["Metric"]["MetricName"] == "ServerError"
    assert rate[0]["MetricStat"]["Metric"]["Namespace"] == "Gatehouse"
    apigw = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Namespace") == "AWS/ApiGateway"
    }
    assert set(apigw) == {"5XXError", "Latency"}
    assert apigw["Latency"]["ExtendedStatistic"] == "p99"


def test_the_mail_queues(template: dict[str, Any]) -> None:
    """The queue Chalice's ``on_sqs_message`` subscribes to, its dead-letter queue after
    ``MailMaxReceiveCount`` (5) receives, both encrypted with the stack's key, and an
    alarm as soon as a message is dead-lettered."""
    resources = template["Resources"]
    queue = resources["MailQueue"]["Properties"]
    dead = resources["MailDeadLetterQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "gatehouse-${Stage}-mail"}
    assert dead["QueueName"] == {"Fn::Sub": "gatehouse-${Stage}-mail-dead-letter"}
    assert queue["KmsMasterKeyId"] == dead["KmsMasterKeyId"] == {"Ref": "DataKey"}
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["MailDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MailMaxReceiveCount"}
    assert template["Parameters"]["MailMaxReceiveCount"]["Default"] == 5
    # Lambda requires the visibility timeout to be at least the function's timeout.
    config = json.loads((render_infra.ROOT / ".chalice" / "config.json").read_text("utf-8"))
    assert queue["VisibilityTimeout"] >= config["lambda_timeout"]
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    # Chalice subscribes by ARN, not by reference: the handler waits for the queue.
    assert resources["SendMail"] == {"DependsOn": ["MailQueue"]}
    alarm = resources["MailDeadLetterAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["MailDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    # The API encrypts what it enqueues; the mail handler only decrypts what it receives.
    send = resources["ApiEnqueuesOnTheEncryptedQueue"]["Properties"]
    receive = resources["MailHandlerReadsTheEncryptedQueue"]["Properties"]
    assert send["Roles"] == [{"Ref": "ApiHandlerRole"}]
    assert receive["Roles"] == [{"Ref": "SendMailRole"}]
    [sends] = send["PolicyDocument"]["Statement"]
    [receives] = receive["PolicyDocument"]["Statement"]
    assert sends["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert receives["Action"] == "kms:Decrypt"
    for statement in (sends, receives):
        assert statement["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
        via = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert via == {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}


def _key_grants(template: dict[str, Any], role: str) -> dict[str, set[str]]:
    """The KMS actions the stack's policies give ``role`` on the data key, by the
    service (``kms:ViaService``) they are limited to."""
    grants: dict[str, set[str]] = {}
    for policy in _of_type(template, "AWS::IAM::Policy").values():
        props = policy["Properties"]
        if {"Ref": role} not in props["Roles"]:
            continue
        for statement in props["PolicyDocument"]["Statement"]:
            assert statement["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"]
            actions = statement["Action"]
            grants.setdefault(via.split(".")[0], set()).update(
                [actions] if isinstance(actions, str) else actions
            )
    return grants


def test_each_function_uses_the_key_only_as_far_as_it_must(template: dict[str, Any]) -> None:
    """The authorizer only reads a session item: it may decrypt through DynamoDB, never
    through Secrets Manager (the public keys' secret is not on this key, and the signing
    keys' must stay out of its reach), never encrypt or make data keys; the API also
    reads the signing keys' secret (that secret only) and writes the table and the
    queue; the mail handler only reads the queue."""
    read = {"kms:Decrypt", "kms:DescribeKey"}
    write = {"kms:Encrypt", "kms:GenerateDataKey*"}
    assert _key_grants(template, "BearerRole") == {"dynamodb": read}
    assert _key_grants(template, "ApiHandlerRole") == {
        "secretsmanager": {"kms:Decrypt"},
        "dynamodb": read | write,
        "sqs": {"kms:Decrypt", "kms:GenerateDataKey*"},
    }
    assert _key_grants(template, "SendMailRole") == {"sqs": {"kms:Decrypt"}}
    resources = template["Resources"]
    grant = resources["ApiReadsTheSigningKeySecret"]["Properties"]
    assert grant["Roles"] == [{"Ref": "ApiHandlerRole"}]
    [statement] = grant["PolicyDocument"]["Statement"]
    # Secrets Manager names the secret in the encryption context of every data key.
    context = statement["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"]
    assert context == {"Ref": "SigningKeys"}


def test_the_access_log(template: dict[str, Any]) -> None:
    """API Gateway writes one JSON object per request to an encrypted log group kept
    ``LogRetentionDays``; the stage waits for the account's CloudWatch role when this
    stack sets it."""
    resources = template["Resources"]
    setting = resources["RestAPI"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"])
    for name in ("requestId", "ip", "resourcePath", "status", "latency", "userAgent"):
        assert fields[name].startswith("$context."), name
    assert fields["integrationLatency"] == "$context.integrationLatency"
    assert fields["authorizerError"] == "$context.authorizer.error"
    for group in ("ApiAccessLogGroup", "ApiHandlerLogGroup", "BearerLogGroup", "SendMailLogGroup"):
        props = resources[group]["Properties"]
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert props["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert template["Parameters"]["CreateApiGatewayAccountRole"]["Default"] == "false"
    assert resources["ApiGatewayAccount"]["Condition"] == "CreateAccountRole"
    assert resources["RestAPI"]["DependsOn"] == ["ApiGatewayAccountReady"]
    ready = resources["ApiGatewayAccountReady"]["Metadata"]["Account"]["Fn::If"]
    assert ready[:2] == ["CreateAccountRole", {"Ref": "ApiGatewayAccount"}]
    # CloudWatch Logs may use the key for this account's log groups only.
    [logs] = [
        s
        for s in resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Sid"] == "CloudWatchLogsEncryptTheStackLogGroups"
    ]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]


def _substituted(value: dict[str, str]) -> str:
    """An ``Fn::Sub`` string with each ``${...}`` replaced by a placeholder."""
    text = value["Fn::Sub"]
    while "${" in text:
        start = text.index("${")
        text = text[:start] + "x" + text[text.index("}", start) + 1 :]
    return text


def test_the_dashboard(template: dict[str, Any]) -> None:
    body = json.loads(
        _substituted(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    )
    metrics = [
        (m[0], m[1], m[-1].get("stat") if isinstance(m[-1], dict) else None)
        for widget in body["widgets"]
        for m in widget["properties"]["metrics"]
    ]
    names = {(namespace, name) for namespace, name, _ in metrics}
    assert {
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "5XXError"),
        ("Gatehouse", "LoginSucceeded"),
        ("Gatehouse", "LoginFailed"),
        ("Gatehouse", "Throttled"),
        ("Gatehouse", "RefreshReuse"),
        ("Gatehouse", "MfaChallenged"),
        ("Gatehouse", "PasskeyLoginSucceeded"),
        ("Gatehouse", "PasskeyLoginFailed"),
        ("Gatehouse", "PasskeyCloned"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    } <= names
    assert {s for ns, n, s in metrics if n == "Latency"} == {"p50", "p99"}
    subs = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "${MailDeadLetterQueue.QueueName}" in subs
    assert "${Table}" in subs


OPTIONAL_PARTS = {
    "RequireApiKey": {"ApiKey", "UsagePlan", "UsagePlanKey"},
    "UseWebAcl": {"WebAclForTheApi", "WebAclAssociation"},
    "ArchiveAudit": {
        "AuditBucket",
        "AuditBucketPolicy",
        "AuditDeliveryRole",
        "AuditDeliveryStream",
        "AuditSubscriptionRole",
        "AuditSubscription",
    },
    "CreateAccountRole": {"ApiGatewayCloudWatchRole", "ApiGatewayAccount"},
}


def test_optional_parts_exist_only_when_switched_on(template: dict[str, Any]) -> None:
    """Each optional part is exactly the resources under its condition, off by default."""
    resources = template["Resources"]
    conditioned: dict[str, set[str]] = {}
    for name, resource in resources.items():
        if "Condition" in resource:
            conditioned.setdefault(resource["Condition"], set()).add(name)
    assert conditioned == OPTIONAL_PARTS
    switches = {
        "RequireApiKey": "ApiKeyRequired",
        "UseWebAcl": "WebAcl",
        "ArchiveAudit": "AuditArchive",
        "CreateAccountRole": "CreateApiGatewayAccountRole",
    }
    for condition, parameter in switches.items():
        assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": parameter}, "true"]}
        assert template["Parameters"][parameter]["Default"] == "false"


def test_the_usage_plan_and_api_key(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    plan = resources["UsagePlan"]["Properties"]
    assert plan["Throttle"] == {"RateLimit": 1000, "BurstLimit": 2000}
    assert plan["Quota"] == {"Limit": 10000, "Period": "DAY"}
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["securityDefinitions"] == {"api_key": render_infra.API_KEY_SCHEME}
    paths = body["paths"]
    for path, methods in gatehouse.app.routes.items():
        for method, entry in methods.items():
            if method == "OPTIONS":  # a preflight carries no key
                assert method.lower() not in paths[path]
                continue
            condition, keyed, plain = paths[path][method.lower()]["security"]["Fn::If"]
            assert condition == "RequireApiKey"
            bearer: dict[str, list[str]] = {entry.authorizer.name: []} if entry.authorizer else {}
            assert keyed == [{**bearer, "api_key": []}]
            assert plain == ([bearer] if bearer else {"Ref": "AWS::NoValue"})


def test_the_web_acl(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    acl = resources["WebAclForTheApi"]["Properties"]
    assert acl["Scope"] == "REGIONAL"
    rules = {r["Name"]: r for r in acl["Rules"]}
    rate = rules["RatePerIp"]["Statement"]["RateBasedStatement"]
    assert rate == {
        "Limit": {"Ref": "WafRateLimitPer5Minutes"},
        "EvaluationWindowSec": 300,
        "AggregateKeyType": "IP",
    }
    assert template["Parameters"]["WafRateLimitPer5Minutes"]["Default"] == 2000
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert managed == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    arn = resources["WebAclAssociation"]["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${RestAPI}/stages/${RestAPI.Stage}")


def test_the_audit_archive(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    bucket = resources["AuditBucket"]["Properties"]
    [sse] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Transitions"] == [{"StorageClass": "GLACIER", "TransitionInDays": 90}]
    assert rule["ExpirationInDays"] == {"Ref": "AuditArchiveExpirationDays"}
    [deny] = resources["AuditBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    subscription = resources["AuditSubscription"]["Properties"]
    assert subscription["LogGroupName"] == {"Ref": "ApiHandlerLogGroup"}
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["AuditDeliveryStream", "Arn"]}
    assert subscription["FilterPattern"] == "{ $.audit IS TRUE }"
    stream = resources["AuditDeliveryStream"]["Properties"]
    assert stream["ExtendedS3DestinationConfiguration"]["BucketARN"] == {
        "Fn::GetAtt": ["AuditBucket", "Arn"]
    }
    # Encrypted at rest while Firehose buffers it, with the stack's key (a DirectPut
    # stream, which is what a CloudWatch Logs subscription feeds, allows it).
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
