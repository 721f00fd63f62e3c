"""Scheduled key rotation (chalicelib/crypto/rotation.py) through whole cycles, with an injected
clock: against moto's Secrets Manager (the two secrets of a deployed stage) and against
the local key file. Tokens are issued and verified by the real ``AccessTokens`` between
the steps, so "a verifier never meets an unknown kid" and "a retired key verifies
nothing" are checked as a client would see them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import jwt
import pytest

from chalicelib.crypto.keys import (
    KeyDocument,
    KeyStores,
    LocalKeyFile,
    SecretsManagerKeys,
    SecretsManagerPublicKeys,
    VerifyingKeys,
)
from chalicelib.crypto.rotation import Outcome, Rotation, RotationPolicy
from chalicelib.crypto.tokens import AccessTokens

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

REGION = "us-east-1"
SIGNING, PUBLIC = "gatehouse-rot-signing-keys", "gatehouse-rot-public-keys"
DAY = 86400
POLICY = RotationPolicy(period=30 * DAY, overlap=600, token_lifetime=900)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws(mocked_aws: None) -> SecretsManagerClient:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name=SIGNING)  # created empty, as infra/ does
    client.create_secret(Name=PUBLIC)
    return client


def deployed(aws: SecretsManagerClient) -> KeyStores:
    return KeyStores(SecretsManagerKeys(aws, SIGNING), SecretsManagerPublicKeys(aws, PUBLIC))


def signer(stores: KeyStores, clock: Clock) -> AccessTokens:
    """A fresh container's signer: its caches start empty."""
    return AccessTokens(
        stores.signing, stores.verifying, issuer="t", audience="a", lifetime=900, clock=clock
    )


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def verifies(keys: VerifyingKeys, token: str) -> bool:
    """Whether ``keys`` (what a verifier holds) check ``token``'s signature. The times
    are the injected clock's, days from now, so PyJWT's own time checks are off here
    (tests/unit/test_tokens.py covers them)."""
    key = keys.verifying_key(kid_of(token))
    if key is None:
        return False
    try:
        jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience="a",
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError:
        return False
    return True


def public_kids(aws: SecretsManagerClient) -> set[str]:
    jwks = json.loads(aws.get_secret_value(SecretId=PUBLIC)["SecretString"])
    return {key["kid"] for key in jwks["keys"]}


def ring(aws: SecretsManagerClient) -> KeyDocument:
    return KeyDocument.parse(aws.get_secret_value(SecretId=SIGNING)["SecretString"])


def test_a_whole_cycle_publishes_first_signs_later_and_retires_when_no_token_is_left(
    aws: SecretsManagerClient,
) -> None:
    clock = Clock(1_800_000_000)
    stores = deployed(aws)
    rotation = Rotation(stores, POLICY, clock)

    # A new stage: the first key signs at once.
    first = rotation.run()
    [old] = ring(aws).keys
    assert first.steps == [f"added {old.kid}"]
    assert public_kids(aws) == {old.kid}
    assert rotation.run().steps == []  # nothing due: idempotent

    # Thirty days on: a new key joins and is published, but the old one still signs.
    clock.now += POLICY.period
    added = rotation.run()
    new = ring(aws).next_kid
    assert added.steps == [f"added {new}", f"published {new}"]
    assert public_kids(aws) == {old.kid, new}
    before = signer(stores, clock).issue("u" * 32, "alice", "s" * 32)
    assert kid_of(before) == old.kid
    cached = stores.verifying.load()  # what a verifier caches now, before the switch

    # Not before every cache has had time to see it.
    clock.now += POLICY.overlap - 1
    assert rotation.run().steps == []
    clock.now += 1
    assert rotation.run().steps == [f"signing {new}"]
    after = signer(stores, clock).issue("u" * 32, "bob", "s" * 32)
    assert kid_of(after) == new
    # A verifier that cached the keys before the switch knows the new kid already.
    assert verifies(cached, after)
    assert verifies(cached, before)

    # The old key retires once no token it signed (or a cached signer) can be live.
    clock.now += POLICY.retire_after - 1
    assert rotation.run().steps == []
    assert verifies(stores.verifying.load(), before)
    clock.now += 1
    assert rotation.run().steps == [f"retired {old.kid}"]
    assert public_kids(aws) == {new}
    assert [k.kid for k in ring(aws).keys] == [new]
    assert not verifies(stores.verifying.load(), before)
    assert verifies(stores.verifying.load(), after)


def test_the_age_over_the_period_is_reported_for_the_alarm(
    aws: SecretsManagerClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(1_800_000_000)
    rotation = Rotation(deployed(aws), POLICY, clock)
    rotation.run()
    clock.now += 15 * DAY

    with caplog.at_level(logging.INFO, logger="gatehouse"):
        outcome = rotation.run()

    assert outcome.age_over_period == pytest.approx(0.5)
    line = [r for r in caplog.records if r.getMessage() == "SigningKeyAgeOverPeriod"][-1]
    fields = line.__dict__["fields"]
    assert fields["SigningKeyAgeOverPeriod"] == 0.5
    assert fields["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "SigningKeyAgeOverPeriod", "Unit": "None"}
    ]


def test_a_run_that_cannot_publish_leaves_the_old_ring_serving_and_the_next_run_catches_up(
    aws: SecretsManagerClient,
) -> None:
    clock = Clock(1_800_000_000)
    stores = deployed(aws)
    rotation = Rotation(stores, POLICY, clock)
    rotation.run()
    before = ring(aws)
    clock.now += POLICY.period
    aws.delete_secret(SecretId=PUBLIC, ForceDeleteWithoutRecovery=True)

    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        rotation.run()

    assert ring(aws) == before  # nothing signs with a key verifiers could not see
    assert kid_of(signer(stores, clock).issue("u" * 32, "a", "s" * 32)) == before.signing_kid
    aws.create_secret(Name=PUBLIC)
    steps = rotation.run().steps
    assert steps[0] == "republished" and steps[1].startswith("added ")


def test_two_runs_at_once_add_one_key_and_the_loser_stops(aws: SecretsManagerClient) -> None:
    clock = Clock(1_800_000_000)
    Rotation(deployed(aws), POLICY, clock).run()
    clock.now += POLICY.period
    barrier = threading.Barrier(2)
    outcomes: list[Outcome] = []

    class Racing(SecretsManagerKeys):
        """The real store; both runs read the same version before either writes."""

        waited = False

        def read_versioned(self) -> tuple[KeyDocument | None, str]:
            found = super().read_versioned()
            if not self.waited:
                self.waited = True
                barrier.wait(timeout=10)
            return found

    def run() -> None:
        stores = KeyStores(Racing(aws, SIGNING), SecretsManagerPublicKeys(aws, PUBLIC))
        outcomes.append(Rotation(stores, POLICY, clock).run())

    racers = [threading.Thread(target=run) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()

    assert sorted(o.conflict for o in outcomes) == [False, True]
    assert len(ring(aws).keys) == 2  # one key added, not two
    assert public_kids(aws) >= {k.kid for k in ring(aws).keys}


def test_a_losing_run_that_publishes_last_leaves_the_winners_key_published(
    aws: SecretsManagerClient,
) -> None:
    """The order the racing test above cannot force: both runs read the ring and the
    public keys, the winner publishes its new key and writes the ring, and only then
    does the loser publish its own candidate, before its write is refused. Left there,
    its public set would hide the winner's key from every verifier until the next run,
    after that key had begun to sign."""
    clock = Clock(1_800_000_000)
    Rotation(deployed(aws), POLICY, clock).run()
    clock.now += POLICY.period
    stale_ring = SecretsManagerKeys(aws, SIGNING).read_versioned()
    stale_public = SecretsManagerPublicKeys(aws, PUBLIC).load()

    class RingReadBefore(SecretsManagerKeys):
        first = True

        def read_versioned(self) -> tuple[KeyDocument | None, str]:
            if self.first:
                self.first = False
                return stale_ring
            return super().read_versioned()

    class PublicReadBefore(SecretsManagerPublicKeys):
        first = True

        def load(self) -> VerifyingKeys:
            if self.first:
                self.first = False
                return stale_public
            return super().load()

    won = Rotation(deployed(aws), POLICY, clock).run()
    loser = KeyStores(RingReadBefore(aws, SIGNING), PublicReadBefore(aws, PUBLIC))
    lost = Rotation(loser, POLICY, clock).run()

    assert (won.conflict, lost.conflict) == (False, True)
    assert len(ring(aws).keys) == 2  # the winner's key, and no second one
    assert public_kids(aws) >= {k.kid for k in ring(aws).keys}


def test_a_stale_write_is_refused_by_the_secret_store(aws: SecretsManagerClient) -> None:
    store = SecretsManagerKeys(aws, SIGNING)
    first = KeyDocument.new(1_800_000_000)
    assert store.write_if(first, "")
    document, version = store.read_versioned()
    assert document == first
    assert store.write_if(first.rotated(1_800_000_060), version)

    assert not store.write_if(first.rotated(1_800_000_120), version)  # based on the old one
    assert store.read_versioned()[0] != first


def test_the_local_key_file_runs_the_same_cycle(tmp_path: Path) -> None:
    clock = Clock(time.time())
    stores = KeyStores(LocalKeyFile(tmp_path / "keys.json", clock))
    rotation = Rotation(stores, POLICY, clock)
    [old] = stores.signing.read().keys

    clock.now += POLICY.period
    assert [s.split()[0] for s in rotation.run().steps] == ["added", "published"]
    clock.now += POLICY.overlap
    assert [s.split()[0] for s in rotation.run().steps] == ["signing"]
    clock.now += POLICY.retire_after
    assert rotation.run().steps == [f"retired {old.kid}"]
    assert old.kid not in {k.kid for k in stores.signing.read().keys}


def test_a_stale_local_write_is_refused(tmp_path: Path) -> None:
    store = LocalKeyFile(tmp_path / "keys.json")
    document, version = store.read_versioned()
    assert document is not None
    assert store.write_if(document.rotated(1), version)

    assert not store.write_if(document.rotated(2), version)


def test_a_key_from_before_the_schedule_starts_its_retirement_clock(
    aws: SecretsManagerClient,
) -> None:
    """A key a manual rotate-key left behind, with no record of when it stopped signing,
    is given one now and retired a full ``retire_after`` later: never early."""
    clock = Clock(1_800_000_000)
    legacy = KeyDocument.new(1_800_000_000).rotated(1_800_000_000)
    raw = json.loads(legacy.dumps())
    for key in raw["keys"]:
        key.pop("signed_until")
    aws.put_secret_value(SecretId=SIGNING, SecretString=json.dumps(raw))
    stores = deployed(aws)
    stores.publish(ring(aws))
    rotation = Rotation(stores, POLICY, clock)

    old = legacy.keys[0].kid
    assert rotation.run().steps == [f"retiring {old}"]
    clock.now += POLICY.retire_after
    assert rotation.run().steps == [f"retired {old}"]
