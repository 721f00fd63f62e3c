"""Running requests truly at once, for the race tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from chalice.test import HTTPResponse

T = TypeVar("T")


def all_at_once(requests: Sequence[Callable[[], T]]) -> list[T]:
    """Run every request on its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(requests))

    def run(request: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return request()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(run, requests))


def statuses(responses: list[HTTPResponse]) -> Counter[int]:
    return Counter(response.status_code for response in responses)
