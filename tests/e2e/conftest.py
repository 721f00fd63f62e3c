"""Fixtures of the end-to-end tests: the real local runner over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.dynamodb_local import DynamoDBLocal
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
