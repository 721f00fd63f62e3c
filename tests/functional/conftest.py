"""Fixtures of the functional tests that several files share."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD
from tests.functional.passkeys import Holder, holder_of
from tests.functional.todolist import SignIn, sign_in


@pytest.fixture
def holder(
    api: Api,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> Holder:
    """A fresh user, signed in with the password, holding one passkey."""
    user = new_user()
    return holder_of(api, user, login(user["username"], PASSWORD)["access_token"])


@pytest.fixture
def person(
    api: Api,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> SignIn:
    """Sign in a fresh user, with a to-do client; call once per user a test needs."""
    return partial(sign_in, api, new_user, login)


@pytest.fixture
def user_token(
    new_user: Callable[..., dict[str, Any]], login: Callable[[str, str], dict[str, Any]]
) -> str:
    """A fresh user with an email, signed in on the web page: their access token (the
    bearer that decides an OAuth client's requests)."""
    made = new_user(email=f"{time.time_ns()}@example.com")
    return str(login(made["username"], PASSWORD)["access_token"])
