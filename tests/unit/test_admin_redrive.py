"""``scripts.admin redrive-mail``: the runbook's answer to the mail dead-letter alarm,
against moto's SQS with the queues named as infra/base.json names them."""

from __future__ import annotations

import json
import time

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
    # moto waits out a long poll on an empty queue, as SQS does: the shortest wait SQS
    # accepts keeps each redrive's last, empty receive to a second.
    monkeypatch.setattr(admin, "RECEIVE_WAIT_SECONDS", 1)
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


def _send(url: str, count: int) -> list[str]:
    sqs = boto3.client("sqs", region_name=REGION)
    bodies = [
        json.dumps({"to": f"u{i}@example.com", "subject": "s", "text": "t"}) for i in range(count)
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    return bodies


def _hold(url: str, seconds: int) -> None:
    """Receive one message and keep it invisible for ``seconds``, as a redrive cut short
    (or the console's "poll for messages") leaves it."""
    sqs = boto3.client("sqs", region_name=REGION)
    [_] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=seconds)[
        "Messages"
    ]


def test_one_empty_receive_does_not_end_the_redrive(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A message out of sight for a second (on AWS also: on a server a short poll did
    not ask) comes back while the redrive waits, since the queue still reports it."""
    target, source = queues
    sent = _send(source, 3)
    _hold(source, 1)

    assert admin.main(["--stage", STAGE, "redrive-mail"]) == 0

    assert capsys.readouterr().out == f"moved 3 message(s) to gatehouse-{STAGE}-mail\n"
    assert sorted(_bodies(target)) == sorted(sent)


def test_a_message_held_longer_ends_the_redrive_with_a_note(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Another receiver's message comes back only after its visibility timeout: the
    redrive does not wait for it beyond ``EMPTY_RECEIVES_MAX`` long polls, and says so."""
    target, source = queues
    _send(source, 2)
    _hold(source, 60)
    started = time.monotonic()

    assert admin.main(["--stage", STAGE, "redrive-mail"]) == 0

    # Not a timing test: the held message comes back only after 60 s, so a redrive that
    # waited for it would take that long; giving up takes a few short polls.
    assert time.monotonic() - started < 30
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"moved 1 message(s) to gatehouse-{STAGE}-mail"
    assert out[1].startswith(f"gatehouse-{STAGE}-mail-dead-letter still reports 1 message(s)")
    assert len(_bodies(target)) == 1
