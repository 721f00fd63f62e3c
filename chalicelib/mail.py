"""Outbound mail through one interface: Amazon SES when deployed, a local outbox file.

The local outbox (``.local/outbox/``, one RFC 5322 ``.eml`` file per message, newest
last by name) makes the reset and verification flows work offline: read the newest
message with ``ls -t .local/outbox | head -1`` and ``cat`` it (see README).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import errors

if TYPE_CHECKING:
    from mypy_boto3_ses.client import SESClient


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
