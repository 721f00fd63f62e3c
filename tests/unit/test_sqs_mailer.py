"""Mail when deployed goes out asynchronously: the request enqueues it on the stage's
mail queue (``SqsMailer``), the queue's handler (``app.send_mail``) sends it through SES
and raises when SES fails so SQS delivers it again. Against moto (SQS and SES)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

import app as gatehouse
from chalicelib import wiring
from chalicelib.platform import errors, mail
from chalicelib.platform.config import Settings
from chalicelib.platform.mail import Message, SesMailer, SqsMailer
from tests.unit.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

SENDER = "no-reply@gatehouse.example"
QUEUE = "gatehouse-test-mail"
MESSAGE = Message(
    to="ada@example.com",
    subject="Reset your password",
    text="Open https://gatehouse.example/reset#token=abc123 within the hour.\n",
)


@pytest.fixture
def queue_url(mocked_aws: None) -> str:
    url: str = boto3.client("sqs", region_name=REGION).create_queue(QueueName=QUEUE)["QueueUrl"]
    return url


@pytest.fixture
def delivery(mocked_aws: None) -> Iterator[SesMailer]:
    """The mail handler's SES mailer, from a verified sender, installed for the test."""
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    mailer = SesMailer(boto3.client("ses", region_name=REGION), SENDER)
    wiring.install_delivery(mailer)
    yield mailer
    wiring.install_delivery(None)


def _settings() -> Settings:
    return dataclasses.replace(
        Settings(), mail_transport="sqs", mail_queue_name=QUEUE, region=REGION
    )


def _received(url: str) -> list[MessageTypeDef]:
    answer = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def sent_count() -> int:
    quota = boto3.client("ses", region_name=REGION).get_send_quota()
    return int(quota["SentLast24Hours"])


def sqs_event(messages: list[MessageTypeDef]) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping hands the handler."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{QUEUE}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def test_the_sqs_transport_enqueues_instead_of_sending(queue_url: str) -> None:
    mailer = wiring.mailer(_settings())

    mailer.send(MESSAGE)

    assert isinstance(mailer, SqsMailer)
    [queued] = _received(queue_url)
    assert mail.decode(queued["Body"]) == MESSAGE
    assert sent_count() == 0  # nothing went through SES in the request


def test_the_body_carries_the_mail_and_nothing_else(queue_url: str) -> None:
    """No sender identity, credentials, settings or account data beyond the mail."""
    wiring.mailer(_settings()).send(MESSAGE)

    [queued] = _received(queue_url)
    assert json.loads(queued["Body"]) == {
        "to": MESSAGE.to,
        "subject": MESSAGE.subject,
        "text": MESSAGE.text,
    }
    assert "MessageAttributes" not in queued


def test_enqueue_then_the_handler_sends_through_ses(queue_url: str, delivery: SesMailer) -> None:
    wiring.mailer(_settings()).send(MESSAGE)
    wiring.mailer(_settings()).send(dataclasses.replace(MESSAGE, to="grace@example.com"))
    queued = _received(queue_url)
    assert len(queued) == 2

    for message in queued:  # one message per invocation, as MAIL_BATCH_SIZE says
        gatehouse.send_mail(sqs_event([message]), None)

    assert sent_count() == 2
    assert gatehouse.MAIL_BATCH_SIZE == 1


def test_a_failing_send_raises_so_sqs_retries(queue_url: str, mocked_aws: None) -> None:
    """SES refuses an unverified sender: the handler raises (the invocation fails, SQS
    makes the message visible again and, after the last receive, dead-letters it)."""
    wiring.install_delivery(SesMailer(boto3.client("ses", region_name=REGION), SENDER))
    try:
        wiring.mailer(_settings()).send(MESSAGE)
        [queued] = _received(queue_url)

        with pytest.raises(errors.ServiceUnavailable):
            gatehouse.send_mail(sqs_event([queued]), None)
    finally:
        wiring.install_delivery(None)
    assert sent_count() == 0


def test_a_body_that_is_not_a_message_raises(delivery: SesMailer) -> None:
    for body in ('["to"]', '{"to": "a@example.com"}', '{"to": 1, "subject": "s", "text": "t"}'):
        with pytest.raises(ValueError, match="queued message"):
            mail.deliver([body], delivery)
    with pytest.raises(ValueError):
        mail.deliver(["not json"], delivery)
    assert sent_count() == 0


def test_an_unreachable_queue_is_a_503_not_a_crash(mocked_aws: None) -> None:
    """No such queue (GetQueueUrl fails): the request answers 503, as SES failing did."""
    with pytest.raises(errors.ServiceUnavailable) as refused:
        wiring.mailer(_settings()).send(MESSAGE)
    assert "NonExistentQueue" not in refused.value.detail


def test_a_given_queue_url_is_used_without_a_lookup(queue_url: str) -> None:
    settings = dataclasses.replace(_settings(), mail_queue_name="unused", mail_queue_url=queue_url)

    wiring.mailer(settings).send(MESSAGE)

    assert len(_received(queue_url)) == 1


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="MAIL_TRANSPORT"):
        wiring.mailer(dataclasses.replace(Settings(), mail_transport="smtp"))


def test_the_queue_name_comes_from_the_stage() -> None:
    assert Settings.from_env({"GATEHOUSE_STAGE": "prod"}).mail_queue_name == "gatehouse-prod-mail"
    named = Settings.from_env({"GATEHOUSE_STAGE": "prod", "MAIL_QUEUE_NAME": "other"})
    assert named.mail_queue_name == "other"
    assert Settings.from_env({"GATEHOUSE_STAGE": "local"}).mail_transport == "outbox"
