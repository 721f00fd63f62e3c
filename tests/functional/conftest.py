"""Fixtures of the functional tests that several files share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD
from tests.functional.passkeys import Holder, holder_of


@pytest.fixture
def holder(
    api: Api,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> Holder:
    """A fresh user, signed in with the password, holding one passkey."""
    user = new_user()
    return holder_of(api, user, login(user["username"], PASSWORD)["access_token"])
