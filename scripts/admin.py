"""Gatehouse's admin command line: keys, sessions, users, export and import.

    python -m scripts.admin [--stage local|dev|prod] <command> [...]

    keys                      list the signing key ring (kid, created, signing)
    rotate-key                a new key signs from now on; older keys keep verifying
    retire-key KID            drop a key: tokens it signed stop verifying
    publish-keys              rewrite the public keys secret from the signing key ring
    rotate-due                the scheduled rotation's steps due now (publish, sign, retire)
    sessions USER             list a user's live sessions
    end-sessions USER         end every session of a user
    disable USER | enable USER
    mfa-off USER              turn a user's TOTP off (after you have proven who they are)
    export [--output FILE]    every user, with password hashes, as JSON lines
    import [--input FILE]     create users from JSON lines (bcrypt hashes kept)
    redrive-mail              move the mail dead-letter queue's messages back to the mail queue
    clients create --name NAME [--redirect-uri URI ...] [--post-logout-redirect-uri URI ...]
                   [--public] [--grant-type authorization_code|refresh_token|client_credentials ...]
                              register an OAuth client; prints it as JSON, with its secret
                              (confidential clients only: shown this once, stored as a hash)
    clients list              every client as JSON lines (never a secret)
    clients delete ID         remove a client
    clients rotate-secret ID  a new secret for a confidential client; the old one stops at once

USER is an id, a username or an email. The stage's environment comes from
``.chalice/config.json`` as ``chalice local`` and ``chalice deploy`` read it; deployed
stages use your AWS credentials (the key ring lives in Secrets Manager there, and its
public keys in a second secret, the one the authorizer reads).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

import boto3  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from chalicelib import wiring  # noqa: E402
from chalicelib.accounts import portability  # noqa: E402
from chalicelib.accounts.sessions import Device  # noqa: E402
from chalicelib.crypto.keys import KeyDocument  # noqa: E402
from chalicelib.oauth.clients import (  # noqa: E402
    DEFAULT_GRANT_TYPES,
    GRANT_TYPES,
    ClientRegistration,
    public_client,
)
from chalicelib.platform.config import Settings  # noqa: E402
from chalicelib.platform.errors import GatehouseError  # noqa: E402
from chalicelib.store.items import UserRecord  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: The dead-letter queue of a mail queue is named after it (infra/base.json).
DEAD_LETTER_SUFFIX = "-dead-letter"
#: SQS receives at most this many messages per call.
_RECEIVE_MAX = 10
#: Seconds a redrive receive waits for messages (long polling). A short poll asks only a
#: sample of SQS's servers and may come back empty while messages remain; a long poll
#: asks them all.
RECEIVE_WAIT_SECONDS = 2
#: Empty receives in a row after which a redrive stops even though the queue still
#: reports messages (held by another receiver until their visibility timeout ends, or
#: a count that lags: SQS's counts are approximate).
EMPTY_RECEIVES_MAX = 2


RING_CHANGED = "the key ring changed meanwhile (a scheduled rotation?): run again"


class AdminError(Exception):
    """A command that cannot be carried out; printed without a traceback."""


def stage_environment(stage: str) -> dict[str, str]:
    """The stage's environment variables from .chalice/config.json (global, then stage)."""
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text("utf-8"))
    if stage not in config.get("stages", {}):
        raise AdminError(f"no stage {stage!r} in .chalice/config.json")
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def _messages_left(sqs: SQSClient, url: str) -> int:
    """Messages the queue reports, visible or held by a receiver (approximate)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    ).get("Attributes", {})
    return int(attributes.get("ApproximateNumberOfMessages", "0")) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
    )


class Admin:
    """Each command, given the built services and an output stream."""

    def __init__(self, svc: wiring.Services, out: TextIO) -> None:
        self.svc = svc
        self.out = out
        self.keys = wiring.key_store(svc.settings)

    def user(self, reference: str) -> UserRecord:
        user = self.svc.accounts.find(reference)
        if user is None:
            raise AdminError(f"no user {reference!r}")
        return user

    def list_keys(self) -> None:
        document = self.keys.signing.read()
        for key in document.keys:
            role = "signing" if key.kid == document.signing_kid else "verifying"
            self.out.write(f"{key.kid}\t{key.created_at}\t{role}\n")

    def rotate_key(self) -> None:
        """Add a key that signs from now on (at once: for an emergency; the schedule
        publishes a key ``KEY_OVERLAP_SECONDS`` before it signs, see ``rotate-due``).
        The public keys are written first, then the private ring: until the ring is
        written nothing signs with the new key, so a failure in between leaves every
        token verifying (the public set only holds one key more, which signed nothing;
        the next run rewrites it). The other order would let the API sign with a key the
        authorizer cannot find. The ring is written only if it did not change meanwhile,
        and the public keys then settle on the ring that won
        (``KeyStores.add_published_first``), so this run never hides another's new key."""
        document, version = self.keys.signing.read_versioned()
        rotated = (document or KeyDocument(signing_kid="", keys=())).rotated(int(time.time()))
        if not self.keys.add_published_first(rotated, version):
            raise AdminError(RING_CHANGED)
        self.out.write(f"{rotated.signing_kid}\tsigning\n")

    def retire_key(self, kid: str) -> None:
        """Drop ``kid``: the private ring first, then the public keys. A failure in
        between leaves the public set as it was, so every token, the retired key's too,
        still verifies: to the verifiers nothing has happened yet, and publish-keys (or
        the next scheduled run) finishes the retirement. (The key never signs meanwhile:
        the signing key cannot be retired.)"""
        document, version = self.keys.signing.read_versioned()
        if document is None:
            raise AdminError("the key ring is empty")
        try:
            retired = document.retired(kid)
        except ValueError as error:
            raise AdminError(str(error)) from None
        self._write(retired, version)
        self.keys.publish(retired)
        self.keys.settle(retired)
        self.out.write(f"{kid}\tretired\n")

    def rotate_due(self) -> None:
        """Take every scheduled rotation step due now, as the hourly ``rotate_keys``
        function does (chalicelib/crypto/rotation.py), and say what was done."""
        outcome = wiring.rotation(self.svc.settings).run()
        for step in outcome.steps:
            self.out.write(step + "\n")
        if outcome.conflict:
            self.out.write("another run changed the key ring first; it carries on from there\n")
        elif not outcome.steps:
            self.out.write("nothing due\n")

    def _write(self, document: KeyDocument, version: str) -> None:
        if not self.keys.signing.write_if(document, version):
            raise AdminError(RING_CHANGED)

    def publish_keys(self) -> None:
        """Rewrite the public keys from the private ring: for a stage deployed before the
        public keys had a secret of their own (the authorizer reads nothing else), or to
        finish a rotate-key or retire-key that failed between its two writes."""
        if self.keys.published is None:
            raise AdminError("this stage verifies with its key file; there is nothing to publish")
        document = self.keys.signing.read()
        self.keys.publish(document)
        self.keys.settle(document)
        for key in document.keys:
            self.out.write(f"{key.kid}\tpublished\n")

    def sessions(self, reference: str) -> None:
        user = self.user(reference)
        for session in self.svc.sessions.list(user.id, current_session_id=""):
            self.out.write(json.dumps(session) + "\n")

    def end_sessions(self, reference: str) -> None:
        count = self.svc.sessions.end_all(self.user(reference).id)
        self.out.write(f"ended {count} session(s)\n")

    def set_disabled(self, reference: str, disabled: bool) -> None:
        user = self.user(reference)
        self.svc.accounts.set_disabled(user.id, disabled)
        self.out.write(f"{user.username}\t{'disabled' if disabled else 'enabled'}\n")

    def mfa_off(self, reference: str) -> None:
        """Turn TOTP off and forget its secret and recovery codes: for an owner who lost
        the authenticator and the codes, or who took an address back by a reset from
        someone who had turned TOTP on (see docs/concepts/account-protection.md). Recorded on
        the user's activity as ``mfa_disabled`` / ``admin``."""
        user = self.user(reference)
        self.svc.mfa.disable(user)
        self.svc.accounts.record(
            Device("scripts.admin", "").event(user.id, "mfa_disabled", "admin", time.time())
        )
        self.out.write(f"{user.username}\tmfa off\n")

    def redrive_mail(self) -> int:
        """Move every message of the mail dead-letter queue back to the mail queue, for
        the queue's handler to send again once the cause (SES identity, sandbox, quota)
        is fixed. Each message is sent to the mail queue before it is deleted from the
        dead-letter queue: a failure in between sends one mail twice, never loses it.
        Received messages stay invisible for a minute, so none is moved twice.

        Receives long-poll, and one empty receive is not the end: the command stops when
        a receive comes back empty and the queue reports no message left, visible or
        held, or after ``EMPTY_RECEIVES_MAX`` empty receives in a row, saying how many
        the queue still reports."""
        settings = self.svc.settings
        sqs = boto3.session.Session(region_name=settings.region).client("sqs")
        queue = settings.mail_queue_name
        target = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        source = sqs.get_queue_url(QueueName=queue + DEAD_LETTER_SUFFIX)["QueueUrl"]
        moved = empty = left = 0
        while empty < EMPTY_RECEIVES_MAX:
            batch = sqs.receive_message(
                QueueUrl=source,
                MaxNumberOfMessages=_RECEIVE_MAX,
                VisibilityTimeout=60,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            ).get("Messages", [])
            for message in batch:
                sqs.send_message(QueueUrl=target, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
            empty = 0 if batch else empty + 1
            left = 0 if batch else _messages_left(sqs, source)
            if not batch and not left:
                break
        self.out.write(f"moved {moved} message(s) to {queue}\n")
        if left:
            self.out.write(
                f"{queue}{DEAD_LETTER_SUFFIX} still reports {left} message(s), visible or "
                "held by another receiver: run redrive-mail again in a minute\n"
            )
        return moved

    def create_client(self, registration: ClientRegistration) -> None:
        client, secret = self.svc.clients.register(registration)
        shown = public_client(client)
        if secret is not None:
            shown["client_secret"] = secret
        self.out.write(json.dumps(shown) + "\n")

    def list_clients(self) -> None:
        for client in self.svc.clients.list():
            self.out.write(json.dumps(public_client(client)) + "\n")

    def delete_client(self, client_id: str) -> None:
        self.svc.clients.delete(client_id)
        self.out.write(f"{client_id}\tdeleted\n")

    def rotate_client_secret(self, client_id: str) -> None:
        secret = self.svc.clients.rotate_secret(client_id)
        self.out.write(json.dumps({"client_id": client_id, "client_secret": secret}) + "\n")

    def export(self, output: TextIO) -> None:
        for user in self.svc.store.scan_users():
            output.write(portability.export_line(user) + "\n")

    def import_(self, source: TextIO) -> int:
        """Create each user; report each bad or clashing line and carry on."""
        failures = 0
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                user = portability.import_line(line, int(time.time()))
                self.svc.store.create_user(user)
            except (ValueError, GatehouseError) as error:
                failures += 1
                reason = error.detail if isinstance(error, GatehouseError) else str(error)
                self.out.write(f"line {number}: {reason}\n")
                continue
            self.out.write(f"imported {user.username}\n")
        return failures


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m scripts.admin", description=__doc__.split("\n")[0]
    )
    top.add_argument("--stage", default="local", help="stage in .chalice/config.json")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("keys")
    commands.add_parser("rotate-key")
    commands.add_parser("retire-key").add_argument("kid")
    commands.add_parser("publish-keys")
    commands.add_parser("rotate-due")
    for name in ("sessions", "end-sessions", "disable", "enable", "mfa-off"):
        commands.add_parser(name).add_argument("user")
    commands.add_parser("export").add_argument("--output", type=Path)
    commands.add_parser("import").add_argument("--input", type=Path)
    commands.add_parser("redrive-mail")
    clients = commands.add_parser("clients").add_subparsers(dest="clients_command", required=True)
    create = clients.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[])
    create.add_argument("--post-logout-redirect-uri", action="append", default=[])
    create.add_argument("--public", action="store_true")
    create.add_argument("--grant-type", action="append", choices=GRANT_TYPES)
    clients.add_parser("list")
    clients.add_parser("delete").add_argument("client_id")
    clients.add_parser("rotate-secret").add_argument("client_id")
    return top


def _clients(args: argparse.Namespace, admin: Admin) -> Callable[[], object]:
    if args.clients_command == "create":
        registration = ClientRegistration(
            name=args.name,
            redirect_uris=tuple(args.redirect_uri),
            post_logout_redirect_uris=tuple(args.post_logout_redirect_uri),
            public=args.public,
            grant_types=tuple(args.grant_type or DEFAULT_GRANT_TYPES),
        )
        return lambda: admin.create_client(registration)
    commands: dict[str, Callable[[], object]] = {
        "list": admin.list_clients,
        "delete": lambda: admin.delete_client(args.client_id),
        "rotate-secret": lambda: admin.rotate_client_secret(args.client_id),
    }
    return commands[args.clients_command]


def run(args: argparse.Namespace, admin: Admin) -> int:
    actions: dict[str, Callable[[], object]] = {
        "keys": admin.list_keys,
        "rotate-key": admin.rotate_key,
        "retire-key": lambda: admin.retire_key(args.kid),
        "publish-keys": admin.publish_keys,
        "rotate-due": admin.rotate_due,
        "sessions": lambda: admin.sessions(args.user),
        "end-sessions": lambda: admin.end_sessions(args.user),
        "disable": lambda: admin.set_disabled(args.user, True),
        "enable": lambda: admin.set_disabled(args.user, False),
        "mfa-off": lambda: admin.mfa_off(args.user),
        "redrive-mail": admin.redrive_mail,
    }
    if args.command == "clients":
        actions["clients"] = _clients(args, admin)
    if args.command == "export":
        if args.output is None:
            admin.export(sys.stdout)
        else:
            with args.output.open("w", encoding="utf-8") as output:
                admin.export(output)
        return 0
    if args.command == "import":
        if args.input is None:
            return 1 if admin.import_(sys.stdin) else 0
        with args.input.open(encoding="utf-8") as source:
            return 1 if admin.import_(source) else 0
    actions[args.command]()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        os.environ.update(stage_environment(args.stage))
        admin = Admin(wiring.Services.build(Settings.from_env()), sys.stdout)
        return run(args, admin)
    except (AdminError, GatehouseError, ClientError, BotoCoreError) as error:
        # An AWS error reaches here from the key source's writes or the redrive's queue
        # calls; the operator sees AWS's own message (which resource, which
        # permission), not a traceback.
        message = error.detail if isinstance(error, GatehouseError) else str(error)
        if isinstance(error, GatehouseError) and error.errors:
            message += " " + "; ".join(f"{e.field}: {e.message}" for e in error.errors)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
