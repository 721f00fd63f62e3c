"""Mail when deployed: Amazon SES, against moto (SES has no local engine)."""

from __future__ import annotations

import dataclasses

import boto3
import pytest

from chalicelib import wiring
from chalicelib.platform import errors
from chalicelib.platform.config import Settings
from chalicelib.platform.mail import LocalOutbox, Message, SesMailer
from tests.unit.conftest import REGION

SENDER = "no-reply@gatehouse.example"
MESSAGE = Message(to="ada@example.com", subject="Reset your password", text="A link\n")


def sent_count() -> int:
    quota = boto3.client("ses", region_name=REGION).get_send_quota()
    return int(quota["SentLast24Hours"])


def test_a_deployed_stage_sends_mail_through_ses(mocked_aws: None) -> None:
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    settings = dataclasses.replace(
        Settings(), mail_transport="ses", mail_sender=SENDER, region=REGION
    )
    mailer = wiring.mailer(settings)

    mailer.send(MESSAGE)

    assert isinstance(mailer, SesMailer)
    assert sent_count() == 1


def test_ses_refusing_a_message_is_a_503_not_a_crash(mocked_aws: None) -> None:
    """An unverified sender makes SES refuse (MessageRejected): the client is told to
    try again later, and no AWS error text reaches it."""
    mailer = SesMailer(boto3.client("ses", region_name=REGION), "unverified@example.com")

    with pytest.raises(errors.ServiceUnavailable) as refused:
        mailer.send(MESSAGE)

    assert "MessageRejected" not in refused.value.detail
    assert sent_count() == 0


def test_the_local_stage_writes_the_outbox_instead() -> None:
    settings = dataclasses.replace(Settings(), mail_transport="outbox")

    assert isinstance(wiring.mailer(settings), LocalOutbox)
