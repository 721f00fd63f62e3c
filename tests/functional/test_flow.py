"""Register -> login -> /protected, the walkthrough's whole flow, on DynamoDB Local."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


def test_register_login_protected(api: Api) -> None:
    created = api.post(
        "/register",
        {"username": "Flow.User", "password": "a long enough secret", "email": "Flow@Example.com"},
    )
    assert created.status_code == 201
    user = created.json_body["user"]
    assert user["username"] == "Flow.User"
    assert user["email_verified"] is False
    assert "password_hash" not in user and "password" not in user

    logged_in = api.post("/login", {"username": "flow.user", "password": "a long enough secret"})
    assert logged_in.status_code == 200
    pair: dict[str, Any] = logged_in.json_body
    assert pair["token_type"] == "Bearer"
    assert logged_in.headers["Cache-Control"] == "no-store"

    protected = api.get("/protected", token=pair["access_token"])
    assert protected.status_code == 200
    assert protected.json_body["user"] == {"id": user["id"], "username": "Flow.User"}
