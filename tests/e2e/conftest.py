"""Fixtures of the end-to-end tests: the real local runner over HTTP, and the browser
that opens its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from scripts.dynamodb_local import DynamoDBLocal
from tests.e2e.browser import Site, chromium
from tests.e2e.runner import Runner, serve


@pytest.fixture
def runner(dynamodb: DynamoDBLocal, tmp_path: Path) -> Iterator[Runner]:
    """A runner of this test's own (the test may stop it)."""
    with serve(dynamodb, tmp_path) as started:
        yield started


@pytest.fixture(scope="module")
def shared_runner(
    dynamodb: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runner]:
    """One runner for every test of a module (tests must not stop it)."""
    with serve(dynamodb, tmp_path_factory.mktemp("runner")) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for every test of a module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def site(shared_runner: Runner, browser: Browser) -> Iterator[Site]:
    """The module's runner's page; the test fails on any CSP violation or script error."""
    opened = Site(shared_runner, browser)
    yield opened
    for context in opened.contexts:
        context.close()
    assert not opened.problems, "\n".join(opened.problems)
