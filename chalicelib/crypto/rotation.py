"""Scheduled signing-key rotation: a key is published, then signs, then retires.

A run (the ``rotate_keys`` schedule, hourly; ``python -m scripts.admin rotate-due``
locally and by hand) takes every step that is due, in this order, and then stops:

1. **Repair**: if the public keys (what verifiers read) are not exactly the ring's, write
   them again. Each step below writes the ring first, so a run that died between its two
   writes is finished here.
2. **Published**: a next key the public keys now hold is marked published at ``now``.
3. **Promote**: a next key published at least ``overlap`` ago starts signing, and the
   key before it stops. ``overlap`` covers the JWKS documents' cache time (300 s) and
   the containers' key caches (300 s), so no verifier that cached the keys can meet a
   ``kid`` it has not seen.
4. **Add**: when the signing key is ``period`` old and there is no next key, a new key
   joins the ring as the next one (it signs nothing yet) and is published.
5. **Retire**: a key that stopped signing ``token lifetime + overlap`` ago can be on no
   live token any more (nor cached by a signer), so it leaves the ring and then the
   public keys. A key that never recorded when it stopped (made by ``rotate-key``
   before this) starts that clock now.

Every change to the ring is one compare-and-swap (``KeyStore.write_if``): two runs at
once cannot both write, and the loser stops (``Outcome.conflict``) with the ring as the
winner left it. A failure leaves the last written ring serving. The age of the signing
key over the period is reported on every run; its alarm fires at 2 (see infra/).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.crypto.keys import KeyDocument, KeyStores, VerifyingKeys
from chalicelib.crypto.tokens import LEEWAY_SECONDS
from chalicelib.platform import errors, observability

_log = logging.getLogger("gatehouse")
#: More steps than any run needs (repair, published, promote, add, published, retire...):
#: a bound, so a source that never settles cannot loop forever.
MAX_STEPS = 12


@dataclass(frozen=True)
class RotationPolicy:
    """``period``: how long a key signs; ``overlap``: how long every cache of the keys
    may lag; ``token_lifetime``: the longest a token it signed lives."""

    period: int
    overlap: int
    token_lifetime: int

    @property
    def retire_after(self) -> int:
        """Seconds from a key's last signature to the moment no live token can carry it."""
        return self.token_lifetime + self.overlap + LEEWAY_SECONDS


@dataclass
class Outcome:
    """What one run did: its steps (``"<step> <kid>"``), and whether it lost a race."""

    steps: list[str] = field(default_factory=list)
    conflict: bool = False
    #: The signing key's age over the period, after the run (the alarm's metric).
    age_over_period: float = 0.0


@dataclass(frozen=True)
class Step:
    """One step: its name, the ring it writes (None: the ring stays), and when the
    public keys are written: ``before`` the ring for a key that only joins (it signs
    nothing yet, so verifiers may see it first), ``after`` for one that leaves (it
    must stay verifiable until the ring has dropped it), or not at all."""

    name: str
    ring: KeyDocument | None
    publish: str | None = None


class Rotation:
    def __init__(
        self, stores: KeyStores, policy: RotationPolicy, clock: Callable[[], float]
    ) -> None:
        self._stores = stores
        self._policy = policy
        self._clock = clock

    def run(self) -> Outcome:
        """Take every step due now; see the module docstring."""
        outcome = Outcome()
        for _ in range(MAX_STEPS):
            stored, version = self._stores.signing.read_versioned()
            document = stored or KeyDocument(signing_kid="", keys=())
            now = int(self._clock())
            step = self._step(document, now)
            if step is None:
                outcome.age_over_period = self._age(document, now)
                break
            if step.ring is None:
                self._stores.publish(document)
                self._stores.settle(document)
            else:
                if step.publish == "before":
                    written = self._stores.add_published_first(step.ring, version)
                else:
                    written = self._stores.signing.write_if(step.ring, version)
                if not written:
                    outcome.conflict = True
                    break
                if step.publish == "after":
                    self._stores.publish(step.ring)
                    self._stores.settle(step.ring)
            outcome.steps.append(step.name)
        observability.gauge(
            _log,
            "SigningKeyAgeOverPeriod",
            round(outcome.age_over_period, 3),
            {"steps": outcome.steps, "conflict": outcome.conflict},
        )
        return outcome

    def _step(self, document: KeyDocument, now: int) -> Step | None:
        """The first step due, or None."""
        if not document.keys:  # a new stage: its first key signs at once
            first = document.rotated(now)
            return Step(f"added {first.signing_kid}", first, "before")
        published = self._published()
        if published is not None and published.jwks() != document.ring().public().jwks():
            return Step("republished", None)
        return self._next_key_step(document, now) or self._retire_step(document, now)

    def _next_key_step(self, document: KeyDocument, now: int) -> Step | None:
        """Publish, then promote, the next key; or add one when the signer is due."""
        following = document.key(document.next_kid) if document.next_kid else None
        if following is not None and not following.published_at:
            return Step(f"published {following.kid}", document.published(following.kid, now))
        if following is not None and now - following.published_at >= self._policy.overlap:
            return Step(f"signing {following.kid}", document.promoted(now))
        signer = document.key(document.signing_kid)
        if following is None and signer and now - signer.created_at >= self._policy.period:
            added = document.with_next(now)
            return Step(f"added {added.next_kid}", added, "before")
        return None

    def _retire_step(self, document: KeyDocument, now: int) -> Step | None:
        """Start the clock of a key that stopped signing, or retire one whose clock ran out."""
        for key in document.keys:
            if key.kid in (document.signing_kid, document.next_kid):
                continue
            if not key.signed_until:
                return Step(f"retiring {key.kid}", document.signed_until_now(key.kid, now))
            if now - key.signed_until >= self._policy.retire_after:
                return Step(f"retired {key.kid}", document.retired(key.kid), "after")
        return None

    def _published(self) -> VerifyingKeys | None:
        """What verifiers read, when it is kept apart from the ring (deployed), else None:
        locally they read the ring itself. A set that cannot be read is one to rewrite."""
        if self._stores.published is None:
            return None
        try:
            return self._stores.published.load()
        except (ValueError, KeyError, errors.ServiceUnavailable):
            return VerifyingKeys({})

    def _age(self, document: KeyDocument, now: int) -> float:
        signer = document.key(document.signing_kid)
        return (now - signer.created_at) / self._policy.period if signer is not None else 0.0
