"""Brute-force and abuse limits, kept in DynamoDB so they hold across every Lambda container.

Each limit is a fixed-window counter per key (an account name, an email, a client IP, a
mail recipient): one item per key and window, changed with an atomic ``ADD`` and reaped
by TTL when the window ends. Limits come in pairs, an hour and a day, so the wait grows:
past the hourly limit a client waits for the hour to end; keep failing across hours and
the daily limit holds it until the day ends.

An attempt is *claimed* before any lookup or bcrypt work: one transaction adds one to
each of its counters on the condition that every count is still below its limit, so
however many requests race, at most the limit of them are ever checked (a check-then-
count design lets 40 parallel guesses all through). What is refused is a 429 with
``Retry-After`` and costs no more work. A claim that turns out not to be a guess (the
right password, a valid token) is given back (``give_back``), so the counts are of
failures, plus the attempts in flight; a success also clears the account's counters.
Some limits count every request instead (forgotten-password mail, passkey options,
registrations, verification mail): those claims are never given back.

A key that names no account is throttled exactly like one that does, so the limits
reveal nothing about which accounts exist. Keys are hashed before they are stored: a
table dump shows no usernames, emails or IPs from the counters. Client IPs are keyed by
address, IPv6 ones by their /64 (one subscriber's whole allocation, RFC 6177): a
client that may pick any of 2^64 addresses cannot escape the limit by changing them.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from chalicelib.platform import errors
from chalicelib.store import items
from chalicelib.store.dynamo import TransactionConflicts
from chalicelib.store.items import CounterChange
from chalicelib.store.table import Store

#: Counter kinds whose keys are client IPs.
IP_KINDS = frozenset({"ip", "options", "register"})


def ip_key(ip: str) -> str:
    """The throttle key of a client IP: the address, an IPv6 one as its /64 network
    (an IPv4-mapped IPv6 address as the IPv4 address it maps)."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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

    def change(self, step: int, below: int | None = None) -> CounterChange:
        return CounterChange(self.item_key, self.window_end, step, below)


def pair(name: str, per_hour: int, per_day: int) -> tuple[Limit, Limit]:
    return (Limit(f"{name}-hour", 3600, per_hour), Limit(f"{name}-day", 86400, per_day))


@dataclass(frozen=True)
class Policy:
    """The limits of every throttled action (see docs/concepts/account-protection.md)."""

    account: tuple[Limit, ...] = pair("account", 10, 50)
    ip: tuple[Limit, ...] = pair("ip", 100, 1000)
    forgot: tuple[Limit, ...] = pair("forgot", 5, 20)
    #: Passkey sign-in options per client IP: requests, not failures (each one stores
    #: a challenge), so that asking for options without end costs no write past it.
    options: tuple[Limit, ...] = pair("options", 300, 3000)
    #: Registrations and email changes per client IP, every attempt: each answers
    #: whether a name or address is taken, so neither is a free yes/no oracle.
    register: tuple[Limit, ...] = pair("register", 30, 200)
    #: Verification and email-change messages per account and per recipient address,
    #: every message: mail cannot be sent without end to anyone's inbox.
    mail: tuple[Limit, ...] = pair("mail", 5, 20)


@dataclass(frozen=True)
class Claim:
    """The attempt claimed on ``counters``; ``last`` if it took a counter to its limit
    (the attempt that locks, recorded as ``throttled``)."""

    counters: tuple[Counter, ...]
    last: bool = False

    @property
    def account_keys(self) -> list[items.Key]:
        """The account's counters, which a successful login clears (the IP's stay)."""
        return [c.item_key for c in self.counters if c.kind == "account"]

    def given_back(self, *, but: Sequence[items.Key] = ()) -> list[CounterChange]:
        """The changes that give this attempt back, on every counter but those in ``but``
        (counters the same write deletes)."""
        return [c.change(-1) for c in self.counters if c.item_key not in but]


def _distinct(counters: Sequence[Counter]) -> tuple[Counter, ...]:
    """``counters`` without repeats (one address in two roles, an email that is also the
    username): a transaction may change each item only once."""
    seen: dict[str, Counter] = {}
    for counter in counters:
        seen.setdefault(counter.item_key["pk"]["S"], counter)
    return tuple(seen.values())


class Throttle:
    def __init__(self, store: Store, policy: Policy, clock: Callable[[], float]) -> None:
        self._store = store
        self.policy = policy
        self._clock = clock

    def counters(self, **keys: str) -> tuple[Counter, ...]:
        """Counters for keys by kind (``account=``, ``ip=``, the ``Policy`` field names);
        empty keys are skipped, client IPs keyed by ``ip_key``."""
        now = int(self._clock())
        found: list[Counter] = []
        for kind, key in keys.items():
            if key:
                keyed = ip_key(key) if kind in IP_KINDS else key
                found.extend(
                    Counter(kind, limit, keyed, now) for limit in getattr(self.policy, kind)
                )
        return tuple(found)

    def owner_counters(self, user: items.UserRecord) -> tuple[Counter, ...]:
        """The account counters of both names ``user`` logs in by (username and email):
        what a proven owner (a reset link, a passkey) lifts."""
        return self.counters(account=user.username_key) + self.counters(
            account=user.email_key or ""
        )

    def claim(self, counters: Sequence[Counter]) -> Claim:
        """Claim one attempt on every counter, atomically, or refuse with 429.

        The first write asks for a place that is not the last one, so the attempt that
        takes a counter to its limit knows it is that one (a second write, once per
        window); a refusal returns the items it saw, which tell how long to wait.
        """
        counters = _distinct(counters)
        if not counters:
            return Claim(())
        claims = [
            [c.change(1, below=c.limit.max_failures - 1) for c in counters],
            [c.change(1, below=c.limit.max_failures) for c in counters],
        ]
        for last, changes in enumerate(claims):
            refused = self._refusals(partial(self._store.change_counters, changes))
            if refused is None:
                return Claim(tuple(counters), last=bool(last))
            self._refuse_if_full(counters, refused)
        raise errors.TooManyAttempts(retry_after=1)  # never: a refusal means a full count

    def claim_with(
        self,
        write: Callable[[list[CounterChange]], dict[int, items.Item] | None],
        *,
        claim: Sequence[Counter],
        check: Sequence[Counter] = (),
    ) -> None:
        """Run ``write``, which must make the changes it is given in its own transaction:
        one attempt claimed on ``claim``, ``check`` only looked at. 429 if any is full."""
        claim, check = _distinct(claim), _distinct(check)
        counters = [*claim, *check]
        changes = [c.change(1, below=c.limit.max_failures) for c in claim]
        changes += [c.change(0, below=c.limit.max_failures) for c in check]
        refused = self._refusals(lambda: write(changes))
        if refused is not None:
            self._refuse_if_full(counters, refused)
            raise errors.TooManyAttempts(retry_after=1)  # the write refused for its own reason

    def give_back(
        self,
        claim: Claim,
        *,
        clear: Sequence[Counter] = (),
        event: items.ActivityEvent | None = None,
    ) -> None:
        """Give a claimed attempt back (it was no guess), forget the failures on ``clear``
        (a proven owner is not locked out) and record ``event``, in one write."""
        cleared = [c.item_key for c in clear]
        self._store.settle(claim.given_back(but=cleared), clear=cleared, event=event)

    def clear(self, counters: Sequence[Counter]) -> None:
        """Forget the failures on ``counters``."""
        self._store.clear_counters([c.item_key for c in counters])

    @staticmethod
    def _refusals(
        write: Callable[[], dict[int, items.Item] | None],
    ) -> dict[int, items.Item] | None:
        try:
            return write()
        except TransactionConflicts:
            # Other attempts on the same counters held them through every retry: the
            # key is being hammered right now, and no check has been paid for.
            raise errors.TooManyAttempts(retry_after=1) from None

    def _refuse_if_full(self, counters: Sequence[Counter], refused: dict[int, items.Item]) -> None:
        now = int(self._clock())
        waits = [
            counters[index].window_end - now
            for index, item in refused.items()
            if 0 <= index < len(counters)
            and int(item.get("failures", {}).get("N", "0")) >= counters[index].limit.max_failures
        ]
        if waits:
            raise errors.TooManyAttempts(retry_after=max(1, *waits))
