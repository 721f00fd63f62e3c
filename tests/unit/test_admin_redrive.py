"""``scripts.admin redrive-mail``: the runbook's answer to the mail dead-letter alarm,
against moto's SQS with the queues named as infra/base.json names them."""

from __future__ import annotations

import json

import boto3
import pytest

from scripts import admin
from tests.unit.conftest import REGION

STAGE = "dev"


@pytest.fixture
def queues(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The stage's mail queue and its dead-letter queue; the stage's environment is set
    here so ``admin.main`` (which applies it) leaves no trace after the test."""
    for name, value in admin.stage_environment(STAGE).items():
        monkeypatch.setenv(name, value)
    queue = admin.stage_environment(STAGE)["MAIL_QUEUE_NAME"]
    sqs = boto3.client("sqs", region_name=REGION)
    target = sqs.create_queue(QueueName=queue)["QueueUrl"]
    source = sqs.create_queue(QueueName=queue + admin.DEAD_LETTER_SUFFIX)["QueueUrl"]
    return target, source


def _bodies(url: str) -> list[str]:
    sqs = boto3.client("sqs", region_name=REGION)
    found: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        found += [m["Body"] for m in batch]
    return found


def test_redrive_moves_every_dead_letter_back(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    target, source = queues
    sqs = boto3.client("sqs", region_name=REGION)
    sent = [json.dumps({"to": f"u{i}@example.com", "subject": "s", "text": "t"}) for i in range(23)]
    for body in sent:
        sqs.send_message(QueueUrl=source, MessageBody=body)

    assert admin.main(["--stage", STAGE, "redrive-mail"]) == 0

    assert capsys.readouterr().out == f"moved 23 message(s) to gatehouse-{STAGE}-mail\n"
    assert sorted(_bodies(target)) == sorted(sent)
    assert _bodies(source) == []


def test_an_empty_dead_letter_queue_moves_nothing(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert admin.main(["--stage", STAGE, "redrive-mail"]) == 0
    assert capsys.readouterr().out.startswith("moved 0 message(s)")
    assert _bodies(queues[0]) == []


def test_a_missing_queue_is_an_error_not_a_traceback(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in admin.stage_environment(STAGE).items():
        monkeypatch.setenv(name, value)
    assert admin.main(["--stage", STAGE, "redrive-mail"]) == 2
    assert "error:" in capsys.readouterr().err
