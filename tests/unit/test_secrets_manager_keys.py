"""The deployed stages' key source, AWS Secrets Manager, against moto.

``mock_aws`` is active only inside these tests (the ``mocked_aws`` fixture), and none of them
touches DynamoDB Local, so moto never intercepts another test's calls.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto.core import set_initial_no_auth_action_count

from chalicelib import errors, services
from chalicelib.config import Settings
from chalicelib.keys import KeyDocument, LocalKeyFile, SecretsManagerKeys
from chalicelib.tokens import AccessTokens
from scripts import admin

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

REGION = "us-east-1"
SECRET = "gatehouse-test-signing-keys"
#: The secret ``.chalice/config.json`` names for the dev stage.
DEV_SECRET = "gatehouse-dev-signing-keys"
RELOAD_GAP = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws(mocked_aws: None) -> SecretsManagerClient:
    """A Secrets Manager client on moto (see tests/unit/conftest.py)."""
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def secret(aws: SecretsManagerClient) -> KeyDocument:
    """The secret, holding a fresh key document."""
    document = KeyDocument.new(int(time.time()))
    aws.create_secret(Name=SECRET, SecretString=document.dumps())
    return document


def tokens_on(keys: SecretsManagerKeys, clock: Clock) -> AccessTokens:
    return AccessTokens(
        keys, issuer="gatehouse-test", audience="gatehouse-test-api", lifetime=900, clock=clock
    )


# ------------------------------------------------------------------ the key store


def test_read_gives_back_the_stored_document(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    assert SecretsManagerKeys(aws, SECRET).read() == secret


def test_write_then_read_and_load_round_trip(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    keys = SecretsManagerKeys(aws, SECRET)
    rotated = secret.rotated(int(time.time()))

    keys.write(rotated)

    assert keys.read() == rotated
    ring = keys.load()
    assert ring.signing.kid == rotated.signing_kid
    assert set(ring.verifying) == {k.kid for k in rotated.keys}
    stored = aws.get_secret_value(SecretId=SECRET)["SecretString"]
    assert KeyDocument.parse(stored) == rotated


def test_a_missing_secret_is_service_unavailable(aws: SecretsManagerClient) -> None:
    keys = SecretsManagerKeys(aws, "no-such-secret")

    with pytest.raises(errors.ServiceUnavailable):
        keys.read()
    with pytest.raises(errors.ServiceUnavailable):
        keys.load()


def test_a_secret_with_no_value_yet_is_service_unavailable(aws: SecretsManagerClient) -> None:
    aws.create_secret(Name=SECRET)

    with pytest.raises(errors.ServiceUnavailable):
        SecretsManagerKeys(aws, SECRET).load()


def test_tokens_cannot_be_issued_or_checked_without_the_secret(
    aws: SecretsManagerClient,
) -> None:
    aws.create_secret(Name=SECRET, SecretString=KeyDocument.new(int(time.time())).dumps())
    token = tokens_on(SecretsManagerKeys(aws, SECRET), Clock()).issue("u" * 32, "a", "s" * 32)
    tokens = tokens_on(SecretsManagerKeys(aws, "no-such-secret"), Clock())

    with pytest.raises(errors.ServiceUnavailable):
        tokens.issue("u" * 32, "alice", "s" * 32)
    with pytest.raises(errors.ServiceUnavailable):
        tokens.verify(token)


def test_an_unknown_kid_rereads_the_secret_and_picks_up_a_rotation(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    clock = Clock()
    here = tokens_on(SecretsManagerKeys(aws, SECRET), clock)
    old_token = here.issue("u" * 32, "alice", "s" * 32)
    rotated = secret.rotated(int(clock.now))
    SecretsManagerKeys(aws, SECRET).write(rotated)  # the admin command, elsewhere
    elsewhere = tokens_on(SecretsManagerKeys(aws, SECRET), Clock())  # a newer container
    new_token = elsewhere.issue("u" * 32, "bob", "s" * 32)
    clock.now += RELOAD_GAP + 1

    assert here.verify(new_token).username == "bob"
    assert here.verify(old_token).username == "alice"
    assert here.ring.signing.kid == rotated.signing_kid


def test_a_failed_reread_of_the_secret_keeps_the_last_ring(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    clock = Clock()
    here = tokens_on(SecretsManagerKeys(aws, SECRET), clock)
    token = here.issue("u" * 32, "alice", "s" * 32)
    aws.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    clock.now += 301

    assert here.verify(token).username == "alice"
    assert here.ring.signing.kid == secret.signing_kid


# ------------------------------------------------------------------ wiring


def test_key_store_is_secrets_manager_when_a_secret_is_configured(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    settings = Settings(region=REGION, signing_key_secret=SECRET)

    store = services.key_store(settings)

    assert isinstance(store, SecretsManagerKeys)
    assert store.secret_id == SECRET
    assert store.read() == secret


def test_key_store_is_the_local_file_without_a_secret(tmp_path: Path) -> None:
    settings = Settings(key_file=tmp_path / "keys.json", signing_key_secret=None)

    store = services.key_store(settings)

    assert isinstance(store, LocalKeyFile)
    assert store.path == tmp_path / "keys.json"


# ------------------------------------------------------------------ the admin command, deployed


@pytest.fixture
def dev_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``admin.main --stage dev`` set the stage's environment; undone afterwards."""
    for name in admin.stage_environment("dev"):
        monkeypatch.setenv(name, "placeholder")


@pytest.mark.usefixtures("dev_stage")
def test_admin_rotates_and_retires_keys_in_the_stages_secret(
    aws: SecretsManagerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    first = KeyDocument.new(int(time.time()))
    aws.create_secret(Name=DEV_SECRET, SecretString=first.dumps())

    assert admin.main(["--stage", "dev", "rotate-key"]) == 0
    rotated = KeyDocument.parse(aws.get_secret_value(SecretId=DEV_SECRET)["SecretString"])
    assert rotated.keys[0] == first.keys[0]
    assert capsys.readouterr().out == f"{rotated.signing_kid}\tsigning\n"

    # "--": a kid is base64url and may start with "-", which argparse would read as an option.
    assert admin.main(["--stage", "dev", "retire-key", "--", first.signing_kid]) == 0
    retired = KeyDocument.parse(aws.get_secret_value(SecretId=DEV_SECRET)["SecretString"])
    assert [k.kid for k in retired.keys] == [rotated.signing_kid]


@pytest.mark.usefixtures("dev_stage")
def test_admin_starts_the_ring_in_an_empty_secret(
    aws: SecretsManagerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.create_secret(Name=DEV_SECRET)

    assert admin.main(["--stage", "dev", "rotate-key"]) == 0

    document = KeyDocument.parse(aws.get_secret_value(SecretId=DEV_SECRET)["SecretString"])
    assert len(document.keys) == 1
    assert capsys.readouterr().out == f"{document.signing_kid}\tsigning\n"


@pytest.mark.usefixtures("dev_stage", "aws")
def test_admin_reports_a_missing_secret_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert admin.main(["--stage", "dev", "rotate-key"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert admin.main(["--stage", "dev", "keys"]) == 2


@pytest.mark.usefixtures("dev_stage")
def test_admin_never_replaces_a_ring_it_could_not_read(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator who may write the secret but not read it: rotating "from nothing"
    # would overwrite every live key and sign every user out.
    first = KeyDocument.new(int(time.time()))
    aws.create_secret(Name=DEV_SECRET, SecretString=first.dumps())
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="operator")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:PutSecretValue"], "Resource": "*"}
        ],
    }
    iam.put_user_policy(
        UserName="operator", PolicyName="write-only", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.delenv("AWS_SECURITY_TOKEN")

    @set_initial_no_auth_action_count(0)
    def rotate_as_operator() -> int:
        return admin.main(["--stage", "dev", "rotate-key"])

    assert rotate_as_operator() == 2
    stored = aws.get_secret_value(SecretId=DEV_SECRET)["SecretString"]
    assert KeyDocument.parse(stored) == first
