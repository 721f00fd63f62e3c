"""Outbound mail through one interface: a queue when deployed, a local outbox file.

Deployed, a request only enqueues the message (``SqsMailer``: JSON ``to``, ``subject``,
``text`` on the stage's mail queue); the queue's handler (``deliver``, called by
``app.send_mail``) sends each one through Amazon SES (``SesMailer``) and raises when SES
fails, so SQS delivers it again, and after the queue's last receive moves it to the
dead-letter queue (infra/base.json), whose alarm says so.

The local outbox (``.local/outbox/``, one RFC 5322 ``.eml`` file per message, newest
last by name) makes the reset and verification flows work offline: read the newest
message with ``ls -t .local/outbox | head -1`` and ``cat`` it (see docs/index.md).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform import errors

if TYPE_CHECKING:
    from mypy_boto3_ses.client import SESClient
    from mypy_boto3_sqs.client import SQSClient


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class LocalOutbox:
    """Writes each message to ``directory`` instead of sending it."""

    directory: Path
    sender: str

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.text, cte="8bit")  # readable as-is: no line folding
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        (self.directory / name).write_text(mail.as_string(), encoding="utf-8")


class SesMailer:
    """Sends through Amazon SES from a verified ``sender`` address."""

    def __init__(self, client: SESClient, sender: str) -> None:
        self._client = client
        self._sender = sender

    def send(self, message: Message) -> None:
        try:
            self._client.send_email(
                Source=self._sender,
                Destination={"ToAddresses": [message.to]},
                Message={
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise errors.ServiceUnavailable("Mail could not be sent; try again.") from error


#: The fields of a queued message, each a string: the mail itself and nothing more.
QUEUED_FIELDS = ("to", "subject", "text")


def encode(message: Message) -> str:
    """The queue body for ``message``."""
    return json.dumps({name: getattr(message, name) for name in QUEUED_FIELDS})


def decode(body: str) -> Message:
    """The message a queue body holds; ``ValueError`` for anything else (a body that can
    never be sent fails every receive and ends in the dead-letter queue)."""
    document = json.loads(body)
    if not isinstance(document, dict) or set(document) != set(QUEUED_FIELDS):
        raise ValueError(f"a queued message has exactly the fields {QUEUED_FIELDS}")
    if not all(isinstance(document[name], str) for name in QUEUED_FIELDS):
        raise ValueError("every field of a queued message is a string")
    return Message(to=document["to"], subject=document["subject"], text=document["text"])


class SqsMailer:
    """Enqueues each message on the mail queue; ``deliver`` sends it later.

    The queue URL is looked up once by name (``GetQueueUrl``) unless it is given.
    """

    def __init__(self, client: SQSClient, queue_name: str, queue_url: str | None = None) -> None:
        self._client = client
        self._queue_name = queue_name
        self._queue_url = queue_url

    def _url(self) -> str:
        if self._queue_url is None:
            self._queue_url = self._client.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        return self._queue_url

    def send(self, message: Message) -> None:
        try:
            self._client.send_message(QueueUrl=self._url(), MessageBody=encode(message))
        except (ClientError, BotoCoreError) as error:
            raise errors.ServiceUnavailable("Mail could not be sent; try again.") from error


def deliver(bodies: Iterable[str], mailer: Mailer) -> int:
    """Send each queued body through ``mailer`` (SES); how many were sent.

    Any failure raises, so the Lambda invocation fails and SQS delivers the batch again.
    """
    sent = 0
    for body in bodies:
        mailer.send(decode(body))
        sent += 1
    return sent
