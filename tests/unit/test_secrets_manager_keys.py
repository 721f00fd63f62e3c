"""The deployed stages' key sources, AWS Secrets Manager, against moto: the private
ring's secret, the public keys' secret, and the admin commands that write both.

``mock_aws`` is active only inside these tests (the ``mocked_aws`` fixture), and none of them
touches DynamoDB Local, so moto never intercepts another test's calls.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import jwt
import pytest
from jwt.algorithms import RSAAlgorithm
from moto.core import set_initial_no_auth_action_count
from moto.secretsmanager.exceptions import InvalidRequestException
from moto.secretsmanager.models import SecretsManagerBackend

from chalicelib import wiring
from chalicelib.crypto.keys import (
    KeyCache,
    KeyDocument,
    LocalKeyFile,
    PublicPart,
    SecretsManagerKeys,
    SecretsManagerPublicKeys,
    VerifyingKeys,
)
from chalicelib.crypto.tokens import AccessTokens
from chalicelib.platform import errors
from chalicelib.platform.config import Settings
from scripts import admin

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

REGION = "us-east-1"
SECRET = "gatehouse-test-signing-keys"
PUBLIC = "gatehouse-test-public-keys"
#: The secrets ``.chalice/config.json`` names for the dev stage.
DEV_SECRET = "gatehouse-dev-signing-keys"
DEV_PUBLIC = "gatehouse-dev-public-keys"
#: What a private RSA JWK holds beyond the public one (RFC 7518 6.3.2).
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}
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
    """The signing secret holding a fresh key document, and the public secret its keys."""
    document = KeyDocument.new(int(time.time()))
    aws.create_secret(Name=SECRET, SecretString=document.dumps())
    aws.create_secret(Name=PUBLIC, SecretString=document.ring().public().dumps())
    return document


def tokens_on(
    aws: SecretsManagerClient, clock: Clock, *, signing: str = SECRET, public: str = PUBLIC
) -> AccessTokens:
    """Tokens as a deployed stage builds them: signing with one secret, verifying with
    the other."""
    return AccessTokens(
        SecretsManagerKeys(aws, signing),
        SecretsManagerPublicKeys(aws, public),
        issuer="gatehouse-test",
        audience="gatehouse-test-api",
        lifetime=900,
        clock=clock,
    )


def stored_jwks(aws: SecretsManagerClient, secret_id: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(aws.get_secret_value(SecretId=secret_id)["SecretString"])
    return raw


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


def test_tokens_cannot_be_issued_without_the_signing_secret_nor_checked_without_the_public(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    token = tokens_on(aws, Clock()).issue("u" * 32, "a", "s" * 32)

    with pytest.raises(errors.ServiceUnavailable):
        tokens_on(aws, Clock(), signing="no-such-secret").issue("u" * 32, "alice", "s" * 32)
    with pytest.raises(errors.ServiceUnavailable):
        tokens_on(aws, Clock(), public="no-such-secret").verify(token)


def test_verifying_reads_only_the_public_secret(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    """The authorizer's path: with no signing secret at all, a token still verifies."""
    token = tokens_on(aws, Clock()).issue("u" * 32, "alice", "s" * 32)
    verifier = tokens_on(aws, Clock(), signing="no-such-secret")

    assert verifier.verify(token).username == "alice"
    assert set(verifier.ring.verifying) == {secret.signing_kid}


def test_an_unknown_kid_rereads_the_public_secret_and_picks_up_a_rotation(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    clock = Clock()
    here = tokens_on(aws, clock)
    old_token = here.issue("u" * 32, "alice", "s" * 32)
    rotated = secret.rotated(int(clock.now))
    # The admin command, elsewhere: the public keys first, then the ring.
    SecretsManagerPublicKeys(aws, PUBLIC).write(rotated.ring().public())
    SecretsManagerKeys(aws, SECRET).write(rotated)
    elsewhere = tokens_on(aws, Clock())  # a newer container
    new_token = elsewhere.issue("u" * 32, "bob", "s" * 32)
    clock.now += RELOAD_GAP + 1

    assert here.verify(new_token).username == "bob"
    assert here.verify(old_token).username == "alice"
    assert set(here.ring.verifying) == {secret.signing_kid, rotated.signing_kid}


def test_a_failed_reread_of_the_public_secret_keeps_the_last_keys(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    clock = Clock()
    here = tokens_on(aws, clock)
    token = here.issue("u" * 32, "alice", "s" * 32)
    assert here.verify(token).username == "alice"  # the public keys are read now
    aws.delete_secret(SecretId=PUBLIC, ForceDeleteWithoutRecovery=True)
    clock.now += 301

    assert here.verify(token).username == "alice"
    assert set(here.ring.verifying) == {secret.signing_kid}


# ------------------------------------------------------------------ the public keys


def test_public_keys_write_then_load_round_trip(aws: SecretsManagerClient) -> None:
    aws.create_secret(Name=PUBLIC)  # created empty, as the stack does
    keys = KeyDocument.new(int(time.time())).rotated(int(time.time())).ring().public()

    SecretsManagerPublicKeys(aws, PUBLIC).write(keys)

    assert SecretsManagerPublicKeys(aws, PUBLIC).load() == keys
    assert stored_jwks(aws, PUBLIC) == keys.jwks()


def test_public_keys_with_no_value_yet_are_service_unavailable(
    aws: SecretsManagerClient,
) -> None:
    aws.create_secret(Name=PUBLIC)

    with pytest.raises(errors.ServiceUnavailable):
        SecretsManagerPublicKeys(aws, PUBLIC).load()
    with pytest.raises(errors.ServiceUnavailable):
        SecretsManagerPublicKeys(aws, "no-such-secret").load()


def _private_jwk_set(document: KeyDocument) -> str:
    """The document's JWK Set with each key's private members, as a careless export
    (pyjwt's own JWK of the private key) would write it."""
    ring = document.ring()
    jwk = RSAAlgorithm.to_jwk(ring.signing.private_key, as_dict=True)
    assert isinstance(jwk, dict) and PRIVATE_JWK_MEMBERS - {"oth"} <= set(jwk)
    return json.dumps({"keys": [{**jwk, "kid": ring.signing.kid, "alg": "RS256", "use": "sig"}]})


def test_a_public_secret_holding_a_private_key_is_refused(aws: SecretsManagerClient) -> None:
    """A JWK Set with private members never becomes a verifier's keys: the source says
    it is malformed, and a cache with nothing yet calls the keys unavailable."""
    document = KeyDocument.new(int(time.time()))
    aws.create_secret(Name=PUBLIC, SecretString=_private_jwk_set(document))
    source = SecretsManagerPublicKeys(aws, PUBLIC)

    with pytest.raises(ValueError, match="private"):
        source.load()
    with pytest.raises(errors.ServiceUnavailable):
        _ = KeyCache(source, Clock()).ring


# ------------------------------------------------------------------ wiring


def test_key_store_is_both_secrets_when_they_are_configured(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    settings = Settings(region=REGION, signing_key_secret=SECRET, public_keys_secret=PUBLIC)

    keys = wiring.key_store(settings)

    assert isinstance(keys.signing, SecretsManagerKeys)
    assert keys.signing.secret_id == SECRET
    assert keys.signing.read() == secret
    assert isinstance(keys.published, SecretsManagerPublicKeys)
    assert keys.published.secret_id == PUBLIC
    assert keys.verifying is keys.published
    assert keys.verifying.load() == secret.ring().public()


def test_without_a_public_secret_the_ring_verifies_with_its_own_public_part(
    aws: SecretsManagerClient, secret: KeyDocument
) -> None:
    keys = wiring.key_store(Settings(region=REGION, signing_key_secret=SECRET))

    assert keys.published is None
    assert isinstance(keys.verifying, PublicPart)
    assert keys.verifying.load() == secret.ring().public()


def test_key_store_is_the_local_file_without_a_secret(tmp_path: Path) -> None:
    settings = Settings(key_file=tmp_path / "keys.json", signing_key_secret=None)

    keys = wiring.key_store(settings)

    assert isinstance(keys.signing, LocalKeyFile)
    assert keys.signing.path == tmp_path / "keys.json"
    assert keys.published is None
    verifying = keys.verifying.load()
    assert type(verifying) is VerifyingKeys  # the public part only, no private key
    assert set(verifying.verifying) == {keys.signing.read().signing_kid}


def test_building_the_services_reads_no_secret(aws: SecretsManagerClient) -> None:
    """Services are built on a cold start before any request needs a key: neither
    secret exists here, and building still succeeds."""
    settings = Settings(
        region=REGION, signing_key_secret="no-such-secret", public_keys_secret="no-such-either"
    )

    built = wiring.Services.build(settings)

    with pytest.raises(errors.ServiceUnavailable):
        _ = built.tokens.ring


# ------------------------------------------------------------------ the admin command, deployed


@pytest.fixture
def dev_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``admin.main --stage dev`` set the stage's environment; undone afterwards."""
    for name in admin.stage_environment("dev"):
        monkeypatch.setenv(name, "placeholder")


def dev_tokens(aws: SecretsManagerClient) -> AccessTokens:
    """The dev stage's API: signs with the ring, verifies with the public keys."""
    return tokens_on(aws, Clock(), signing=DEV_SECRET, public=DEV_PUBLIC)


def dev_verifier(aws: SecretsManagerClient) -> AccessTokens:
    """A fresh authorizer container of the dev stage: it can read the public keys only."""
    return tokens_on(aws, Clock(), signing="no-such-secret", public=DEV_PUBLIC)


def stored_ring(aws: SecretsManagerClient) -> KeyDocument:
    return KeyDocument.parse(aws.get_secret_value(SecretId=DEV_SECRET)["SecretString"])


def published_kids(aws: SecretsManagerClient) -> set[str]:
    """The kids of the dev stage's public keys, each checked to be a public JWK only."""
    jwks = stored_jwks(aws, DEV_PUBLIC)
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "kid", "alg", "use", "n", "e"}
        assert not set(jwk) & PRIVATE_JWK_MEMBERS
    return {jwk["kid"] for jwk in jwks["keys"]}


def dev_secrets(aws: SecretsManagerClient, document: KeyDocument | None) -> None:
    """The stage's two secrets as a deploy leaves them: created empty, or holding
    ``document`` and its public keys."""
    if document is None:
        aws.create_secret(Name=DEV_SECRET)
        aws.create_secret(Name=DEV_PUBLIC)
        return
    aws.create_secret(Name=DEV_SECRET, SecretString=document.dumps())
    aws.create_secret(Name=DEV_PUBLIC, SecretString=document.ring().public().dumps())


def fail_writes_to(monkeypatch: pytest.MonkeyPatch, secret_id: str) -> None:
    """moto's PutSecretValue fails for ``secret_id`` (as AWS may: throttling, a lost
    connection, a missing permission) and works for every other secret."""
    original = SecretsManagerBackend.put_secret_value

    def put_secret_value(self: SecretsManagerBackend, **kwargs: Any) -> str:
        if kwargs["secret_id"] == secret_id:
            raise InvalidRequestException("injected: the write failed")
        return original(self, **kwargs)

    monkeypatch.setattr(SecretsManagerBackend, "put_secret_value", put_secret_value)


@pytest.mark.usefixtures("dev_stage")
def test_admin_rotates_and_retires_keys_in_both_secrets(
    aws: SecretsManagerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    first = KeyDocument.new(int(time.time()))
    dev_secrets(aws, first)
    before = dev_tokens(aws).issue("u" * 32, "alice", "s" * 32)

    assert admin.main(["--stage", "dev", "rotate-key"]) == 0
    rotated = stored_ring(aws)
    assert replace(rotated.keys[0], signed_until=0) == first.keys[0]
    assert rotated.keys[0].signed_until > 0  # it stopped signing: its retirement clock
    assert capsys.readouterr().out == f"{rotated.signing_kid}\tsigning\n"
    assert published_kids(aws) == {first.signing_kid, rotated.signing_kid}
    after = dev_tokens(aws).issue("u" * 32, "bob", "s" * 32)
    assert jwt.get_unverified_header(after)["kid"] == rotated.signing_kid
    assert dev_verifier(aws).verify(after).username == "bob"
    assert dev_verifier(aws).verify(before).username == "alice"

    # "--": a kid is base64url and may start with "-", which argparse would read as an option.
    assert admin.main(["--stage", "dev", "retire-key", "--", first.signing_kid]) == 0
    assert [k.kid for k in stored_ring(aws).keys] == [rotated.signing_kid]
    assert published_kids(aws) == {rotated.signing_kid}
    with pytest.raises(errors.InvalidToken):
        dev_verifier(aws).verify(before)
    assert dev_verifier(aws).verify(after).username == "bob"


@pytest.mark.usefixtures("dev_stage")
def test_admin_starts_the_ring_in_empty_secrets(
    aws: SecretsManagerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_secrets(aws, None)

    assert admin.main(["--stage", "dev", "rotate-key"]) == 0

    document = stored_ring(aws)
    assert len(document.keys) == 1
    assert capsys.readouterr().out == f"{document.signing_kid}\tsigning\n"
    assert published_kids(aws) == {document.signing_kid}


@pytest.mark.usefixtures("dev_stage")
def test_publish_keys_fills_the_public_secret_of_a_stage_deployed_before_it(
    aws: SecretsManagerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stage whose ring predates the public secret: the deploy creates that secret
    empty (the authorizer cannot verify yet), and publish-keys writes the ring's keys."""
    document = KeyDocument.new(int(time.time())).rotated(int(time.time()))
    aws.create_secret(Name=DEV_SECRET, SecretString=document.dumps())
    aws.create_secret(Name=DEV_PUBLIC)
    token = dev_tokens(aws).issue("u" * 32, "alice", "s" * 32)
    with pytest.raises(errors.ServiceUnavailable):
        dev_verifier(aws).verify(token)

    assert admin.main(["--stage", "dev", "publish-keys"]) == 0

    assert published_kids(aws) == {k.kid for k in document.keys}
    assert capsys.readouterr().out == "".join(f"{k.kid}\tpublished\n" for k in document.keys)
    assert dev_verifier(aws).verify(token).username == "alice"
    assert stored_ring(aws) == document


@pytest.mark.usefixtures("dev_stage")
def test_a_rotation_that_fails_between_its_writes_leaves_every_token_verifying(
    aws: SecretsManagerClient,
) -> None:
    """The public keys are written, the ring is not: the new key is published but signs
    nothing, so old and new tokens alike verify; the next rotation rewrites the set."""
    first = KeyDocument.new(int(time.time()))
    dev_secrets(aws, first)
    before = dev_tokens(aws).issue("u" * 32, "alice", "s" * 32)

    with pytest.MonkeyPatch.context() as fault:
        fail_writes_to(fault, DEV_SECRET)
        assert admin.main(["--stage", "dev", "rotate-key"]) == 2

    assert stored_ring(aws) == first
    assert len(published_kids(aws)) == 2
    after = dev_tokens(aws).issue("u" * 32, "bob", "s" * 32)
    assert jwt.get_unverified_header(after)["kid"] == first.signing_kid
    for token in (before, after):
        assert dev_verifier(aws).verify(token).user_id == "u" * 32

    assert admin.main(["--stage", "dev", "rotate-key"]) == 0
    assert len(stored_ring(aws).keys) == 2
    assert published_kids(aws) == {k.kid for k in stored_ring(aws).keys}


@pytest.mark.usefixtures("dev_stage")
def test_a_retirement_that_fails_between_its_writes_leaves_every_token_verifying(
    aws: SecretsManagerClient,
) -> None:
    """The ring is written, the public keys are not: to the verifiers nothing has
    changed yet (the retired key's tokens too still verify) until publish-keys."""
    first = KeyDocument.new(int(time.time()))
    dev_secrets(aws, first)
    before = dev_tokens(aws).issue("u" * 32, "alice", "s" * 32)
    assert admin.main(["--stage", "dev", "rotate-key"]) == 0
    signing = stored_ring(aws).signing_kid

    with pytest.MonkeyPatch.context() as fault:
        fail_writes_to(fault, DEV_PUBLIC)
        assert admin.main(["--stage", "dev", "retire-key", "--", first.signing_kid]) == 2

    assert [k.kid for k in stored_ring(aws).keys] == [signing]
    assert published_kids(aws) == {first.signing_kid, signing}
    assert dev_verifier(aws).verify(before).username == "alice"

    assert admin.main(["--stage", "dev", "publish-keys"]) == 0
    assert published_kids(aws) == {signing}
    with pytest.raises(errors.InvalidToken):
        dev_verifier(aws).verify(before)


def test_publish_keys_has_nothing_to_do_on_the_local_stage(tmp_path: Path) -> None:
    built = wiring.Services.build(Settings(key_file=tmp_path / "keys.json"))

    with pytest.raises(admin.AdminError, match="nothing to publish"):
        admin.Admin(built, io.StringIO()).publish_keys()


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
