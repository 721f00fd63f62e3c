"""infra/template.json: rendered from infra/base.json and the gateway table, and what
it promises (table, key, secret, gateway answers, alarms)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import errors, gateway, http
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


def test_a_gateway_response_for_every_row_of_the_table(template: dict[str, Any]) -> None:
    responses = _of_type(template, "AWS::ApiGateway::GatewayResponse")
    by_type = {r["Properties"]["ResponseType"]: r["Properties"] for r in responses.values()}
    assert set(by_type) == set(gateway.GATEWAY_ANSWERS)
    for response_type, error_class in gateway.GATEWAY_ANSWERS.items():
        props = by_type[response_type]
        error = error_class()
        headers = props["ResponseParameters"]
        assert props["RestApiId"] == {"Ref": "RestAPI"}
        assert props["StatusCode"] == str(error.status)
        body = json.loads(props["ResponseTemplates"]["application/json"])
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


def test_the_503_says_when_to_retry(template: dict[str, Any]) -> None:
    props = template["Resources"]["GatewayResponseAuthorizerFailure"]["Properties"]
    retry = errors.ServiceUnavailable().retry_after
    assert props["ResponseParameters"]["gatewayresponse.header.Retry-After"] == f"'{retry}'"


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


def test_the_key_and_the_secret(template: dict[str, Any]) -> None:
    key = template["Resources"]["DataKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    secret = template["Resources"]["SigningKeys"]["Properties"]
    assert secret["Name"] == {"Fn::Sub": "gatehouse-${Stage}-signing-keys"}
    assert secret["KmsKeyId"] == {"Ref": "DataKey"}
    # Created empty: the first `scripts.admin rotate-key` writes the key ring.
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret


def test_the_alarms(template: dict[str, Any]) -> None:
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    gatehouse = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Namespace") == "Gatehouse"
    }
    assert set(gatehouse) == {"Throttled", "LoginFailed", "RefreshReuse"}
    for props in gatehouse.values():
        assert props["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "Stage"}}]
    reuse = gatehouse["RefreshReuse"]
    assert (reuse["ComparisonOperator"], reuse["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
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
    grant = resources["FunctionsUseMailQueueKey"]["Properties"]
    assert grant["Roles"] == [{"Ref": "ApiHandlerRole"}, {"Ref": "SendMailRole"}]
    [statement] = grant["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
