"""Brute-force limits, kept in DynamoDB so they hold across every Lambda container.

Each limit is a fixed-window counter of failures per key (an account name, an email,
a client IP): one item per key and window, incremented with an atomic ``ADD`` and reaped
by TTL when the window ends. Passkey sign-in options are counted per client IP on every
request, failed or not, since each one writes a challenge. Limits come in pairs, an hour
and a day, so the wait grows: past the hourly limit a client waits for the hour to end;
keep failing across hours and the daily limit holds it until the day ends.

A throttled attempt is refused before any lookup or bcrypt work (``check`` is one
BatchGetItem), and a key that names no account is throttled exactly like one that does,
so the limits reveal nothing about which accounts exist. Keys are hashed before they
are stored: a table dump shows no usernames, emails or IPs from the counters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib import errors, items
from chalicelib.store import Store


@dataclass(frozen=True)
class Limit:
    """At most ``max_failures`` per ``window`` seconds for one key."""

    name: str
    window: int
    max_failures: int


@dataclass(frozen=True)
class Counter:
    """One limit applied to one key, in the window that contains ``now``."""

    kind: str
    limit: Limit
    key: str
    now: int

    @property
    def window_start(self) -> int:
        return self.now - self.now % self.limit.window

    @property
    def window_end(self) -> int:
        return self.window_start + self.limit.window

    @property
    def item_key(self) -> items.Key:
        digest = hashlib.sha256(self.key.encode("utf-8")).hexdigest()[:32]
        return items.throttle_key(self.limit.name, digest, self.window_start)


def pair(name: str, per_hour: int, per_day: int) -> tuple[Limit, Limit]:
    return (Limit(f"{name}-hour", 3600, per_hour), Limit(f"{name}-day", 86400, per_day))


@dataclass(frozen=True)
class Policy:
    """The limits of every throttled action (see README, "Brute-force limits")."""

    account: tuple[Limit, ...] = pair("account", 10, 50)
    ip: tuple[Limit, ...] = pair("ip", 100, 1000)
    forgot: tuple[Limit, ...] = pair("forgot", 5, 20)
    #: Passkey sign-in options per client IP: requests, not failures (each one stores
    #: a challenge), so that asking for options without end costs no write past it.
    options: tuple[Limit, ...] = pair("options", 300, 3000)


@dataclass(frozen=True)
class Checked:
    """The counters of one attempt and their counts before it."""

    counters: tuple[Counter, ...]
    counts: tuple[int, ...]

    def of_kind(self, kind: str) -> list[tuple[items.Key, int]]:
        """The ``kind`` counters as (key, window end): what one more count writes."""
        return [(c.item_key, c.window_end) for c in self.counters if c.kind == kind]

    @property
    def account_keys(self) -> list[items.Key]:
        """The account's counters, which a successful login clears (the IP's stay)."""
        return [c.item_key for c in self.counters if c.kind == "account"]

    def tips_over(self) -> bool:
        """True if one more failure reaches a limit (the attempt that locks)."""
        return any(
            n + 1 >= c.limit.max_failures for c, n in zip(self.counters, self.counts, strict=True)
        )


class Throttle:
    def __init__(self, store: Store, policy: Policy, clock: Callable[[], float]) -> None:
        self._store = store
        self.policy = policy
        self._clock = clock

    def counters(self, **keys: str) -> tuple[Counter, ...]:
        """Counters for ``account=``, ``ip=``, ``forgot=`` and ``options=`` keys (empty
        keys are skipped)."""
        now = int(self._clock())
        found: list[Counter] = []
        for kind, key in keys.items():
            if key:
                found.extend(Counter(kind, limit, key, now) for limit in getattr(self.policy, kind))
        return tuple(found)

    def owner_counters(self, user: items.UserRecord) -> tuple[Counter, ...]:
        """The account counters of both names ``user`` logs in by (username and email):
        what a proven owner (a reset link, a passkey) lifts."""
        return self.counters(account=user.username_key) + self.counters(
            account=user.email_key or ""
        )

    def check(self, counters: Sequence[Counter]) -> Checked:
        """Refuse with 429 + ``Retry-After`` if any counter is at its limit."""
        counts = self._store.get_counts([c.item_key for c in counters])
        now = int(self._clock())
        waits = [
            c.window_end - now
            for c, n in zip(counters, counts, strict=True)
            if n >= c.limit.max_failures
        ]
        if waits:
            raise errors.TooManyAttempts(retry_after=max(1, *waits))
        return Checked(tuple(counters), tuple(counts))

    def clear(self, counters: Sequence[Counter]) -> None:
        """Forget the failures on ``counters`` (a proven owner is not locked out)."""
        self._store.clear_counters([c.item_key for c in counters])

    def fail(self, checked: Checked, event: items.ActivityEvent | None = None) -> None:
        """Count one failure on every counter (and record ``event``) in one write."""
        self._store.add_failures(
            [(c.item_key, c.window_end) for c in checked.counters], event=event
        )
