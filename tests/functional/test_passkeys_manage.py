"""Listing, renaming and removing passkeys, through the API on DynamoDB Local."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib.platform.config import Settings
from tests.assertions import assert_problem
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, delete, installed, partition, patch
from tests.functional.passkeys import Holder, enrol, events, passkeys_of, sign_in
from tests.webauthn_authenticator import Authenticator


def test_rename_trims_and_records(api: Api, holder: Holder) -> None:
    response = patch(
        api, f"/me/passkeys/{holder.passkey['id']}", {"name": " Work key "}, token=holder.token
    )

    assert response.status_code == 200, response.body
    assert response.json_body == {**holder.passkey, "name": "Work key"}
    assert passkeys_of(api, holder.token)[0]["name"] == "Work key"
    assert events(api, holder.token, "passkey_renamed") == ["success"]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 65}, {"name": 3}, {"nom": "x"}])
def test_a_bad_rename_is_400(api: Api, holder: Holder, body: dict[str, object]) -> None:
    response = patch(api, f"/me/passkeys/{holder.passkey['id']}", body, token=holder.token)

    assert_problem(response, 400, "validation_error")
    assert passkeys_of(api, holder.token) == [holder.passkey]


def test_remove_then_it_is_gone_and_cannot_sign_in(api: Api, holder: Holder) -> None:
    path = f"/me/passkeys/{holder.passkey['id']}"

    assert delete(api, path, token=holder.token).status_code == 204

    assert passkeys_of(api, holder.token) == []
    assert_problem(delete(api, path, token=holder.token), 404, "not_found")
    assert_problem(patch(api, path, {"name": "x"}, token=holder.token), 404, "not_found")
    assert_problem(sign_in(api, holder.authenticator), 401, "invalid_credentials")
    assert events(api, holder.token, "passkey_removed") == ["success"]


@pytest.mark.parametrize(
    "passkey_id", ["AAAAAAAAAAAAAAAAAAAAAA", "not*base64", "A", "a" * 1400, "é"]
)
def test_unknown_and_malformed_ids_are_the_same_404(
    api: Api, holder: Holder, passkey_id: str
) -> None:
    path = f"/me/passkeys/{quote(passkey_id)}"

    assert_problem(delete(api, path, token=holder.token), 404, "not_found")
    assert_problem(patch(api, path, {"name": "x"}, token=holder.token), 404, "not_found")


def test_another_users_passkey_is_404_and_untouched(
    api: Api,
    holder: Holder,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> None:
    other = new_user()
    token = login(other["username"], PASSWORD)["access_token"]
    path = f"/me/passkeys/{holder.passkey['id']}"

    assert_problem(delete(api, path, token=token), 404, "not_found")
    assert_problem(patch(api, path, {"name": "mine"}, token=token), 404, "not_found")
    assert passkeys_of(api, token) == []
    assert passkeys_of(api, holder.token) == [holder.passkey]


def test_removing_one_frees_a_place_under_the_limit(
    api: Api, holder: Holder, settings: Settings
) -> None:
    with installed(settings, passkey_limit=1):
        blocked = api.post("/me/passkeys/options", {"password": PASSWORD}, token=holder.token)
        assert_problem(blocked, 409, "passkey_limit_reached")

        delete(api, f"/me/passkeys/{holder.passkey['id']}", token=holder.token)

        assert enrol(api, holder.token, Authenticator())["id"]


def test_deleting_the_account_removes_its_passkeys(
    api: Api, holder: Holder, settings: Settings
) -> None:
    assert any(i["sk"]["S"].startswith("PASSKEY") for i in partition(settings, holder.user_id))

    assert delete(api, "/me", {"password": PASSWORD}, token=holder.token).status_code == 204

    assert partition(settings, holder.user_id) == []
    assert_problem(sign_in(api, holder.authenticator), 401, "invalid_credentials")
