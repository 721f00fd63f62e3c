"""The admin command line, run in-process (``main([...])``) against the test DynamoDB.

``main`` reads the stage's environment from ``.chalice/config.json`` into ``os.environ``
and builds its own services from it, as the real command does; the ``admin`` fixture
points it at a key file of the test's own and puts the environment back afterwards.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import bcrypt
import jwt
import pytest

from chalicelib import wiring
from chalicelib.crypto.keys import LocalKeyFile
from chalicelib.platform.config import Settings
from scripts import admin as admin_command
from tests.assertions import assert_problem, unique
from tests.conftest import Api
from tests.functional.lifecycle import enable_totp

PASSWORD = "correct horse battery staple"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@dataclass
class Admin:
    """``python -m scripts.admin ...`` in-process, on the test table and a private key file."""

    key_file: Path
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()  # drop anything printed before
        code = admin_command.main(list(argv))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Admin:
    key_file = tmp_path / "admin-keys.json"
    monkeypatch.setenv("KEY_FILE", str(key_file))
    monkeypatch.delenv("SIGNING_KEY_SECRET", raising=False)
    # main() writes the stage's variables into os.environ; have monkeypatch restore them.
    for name in admin_command.stage_environment("local"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:  # set, then delete: monkeypatch then remembers to remove it again
            monkeypatch.setenv(name, "")
            monkeypatch.delenv(name)
    return Admin(key_file, capsys)


@pytest.fixture
def restore_services(app_services: wiring.Services) -> Iterator[None]:
    try:
        yield
    finally:
        wiring.install(app_services)


def log_in(api: Api, username: str, password: str = PASSWORD, **headers: str) -> Any:
    return api.post("/login", {"username": username, "password": password}, headers=headers)


def works(api: Api, access_token: str) -> bool:
    status = api.get("/protected", token=access_token).status_code
    assert status in (200, 401)
    return status == 200


# ------------------------------------------------------------------ keys


def key_lines(admin: Admin) -> list[list[str]]:
    result = admin("keys")
    assert result.code == 0, result.err
    return [line.split("\t") for line in result.lines]


def test_keys_lists_the_ring_and_rotate_key_adds_a_signing_key(admin: Admin) -> None:
    ((first_kid, created, role),) = key_lines(admin)
    assert role == "signing" and int(created) > 0

    rotated = admin("rotate-key")

    assert rotated.code == 0, rotated.err
    new_kid, label = rotated.out.strip().split("\t")
    assert label == "signing" and new_kid != first_kid
    listed = key_lines(admin)
    assert [(kid, role) for kid, _, role in listed] == [
        (first_kid, "verifying"),
        (new_kid, "signing"),
    ]
    assert LocalKeyFile(admin.key_file).read().signing_kid == new_kid


def test_retire_key_drops_an_old_key(admin: Admin) -> None:
    ((old_kid, _, _),) = key_lines(admin)
    new_kid = admin("rotate-key").out.split("\t")[0]

    result = admin("retire-key", "--", old_kid)

    assert result.code == 0, result.err
    assert result.out == f"{old_kid}\tretired\n"
    assert [kid for kid, _, _ in key_lines(admin)] == [new_kid]


def test_retiring_the_signing_key_fails_with_exit_2_and_a_message(admin: Admin) -> None:
    ((kid, _, _),) = key_lines(admin)
    before = admin.key_file.read_text("utf-8")

    result = admin("retire-key", "--", kid)

    assert result.code == 2
    assert result.err == "error: the signing key cannot be retired; rotate first\n"
    assert result.out == ""
    assert admin.key_file.read_text("utf-8") == before


def test_retiring_an_unknown_key_fails_with_exit_2(admin: Admin) -> None:
    key_lines(admin)
    before = admin.key_file.read_text("utf-8")

    result = admin("retire-key", "--", "no-such-kid")

    assert result.code == 2
    assert result.err.startswith("error: no key 'no-such-kid'")
    assert admin.key_file.read_text("utf-8") == before


@pytest.mark.usefixtures("restore_services")
def test_a_rotation_and_retirement_by_the_admin_reach_the_app(
    admin: Admin, api: Api, settings: Settings, new_user: Callable[..., dict[str, Any]]
) -> None:
    own = replace(settings, key_file=admin.key_file)
    username = new_user(password=PASSWORD)["username"]
    wiring.install(wiring.Services.build(own))
    before = log_in(api, username).json_body["access_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]

    new_kid = admin("rotate-key").out.split("\t")[0]
    wiring.install(wiring.Services.build(own))  # a container started after it

    after = log_in(api, username).json_body["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert works(api, before) and works(api, after)

    assert admin("retire-key", "--", old_kid).code == 0
    wiring.install(wiring.Services.build(own))

    assert not works(api, before)
    assert works(api, after)
    assert {k["kid"] for k in api.get("/.well-known/jwks.json").json_body["keys"]} == {new_kid}


# ------------------------------------------------------------------ sessions


@pytest.mark.parametrize("reference", ["username", "email", "id"])
def test_sessions_lists_a_users_live_sessions(
    admin: Admin,
    api: Api,
    app_services: wiring.Services,
    new_user: Callable[..., dict[str, Any]],
    reference: str,
) -> None:
    user = new_user(password=PASSWORD, email=f"{unique('adm')}@example.com")
    pairs = [log_in(api, user["username"], **{"User-Agent": f"Agent/{i}"}) for i in range(2)]
    sids = {app_services.tokens.verify(p.json_body["access_token"]).session_id for p in pairs}
    name = {"username": user["username"], "email": user["email"], "id": user["user"]["id"]}

    result = admin("sessions", name[reference])

    assert result.code == 0, result.err
    listed = [json.loads(line) for line in result.lines]
    assert {s["id"] for s in listed} == sids
    assert {s["user_agent"] for s in listed} == {"Agent/0", "Agent/1"}
    assert all(s["current"] is False for s in listed)


def test_sessions_of_a_user_with_none_prints_nothing(
    admin: Admin, new_user: Callable[..., dict[str, Any]]
) -> None:
    result = admin("sessions", new_user()["username"])

    assert (result.code, result.out) == (0, "")


def test_end_sessions_ends_every_session_of_that_user_only(
    admin: Admin, api: Api, new_user: Callable[..., dict[str, Any]]
) -> None:
    username = new_user(password=PASSWORD)["username"]
    pairs = [log_in(api, username).json_body for _ in range(2)]
    other = log_in(api, new_user(password=PASSWORD)["username"]).json_body

    result = admin("end-sessions", username)

    assert result.code == 0, result.err
    assert result.out == "ended 2 session(s)\n"
    for pair in pairs:
        assert not works(api, pair["access_token"])
        refreshed = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
        assert_problem(refreshed, 401, "invalid_token")
    assert works(api, other["access_token"])
    assert admin("sessions", username).out == ""
    assert admin("end-sessions", username).out == "ended 0 session(s)\n"


@pytest.mark.parametrize(
    "command", ["sessions", "end-sessions", "disable", "enable", "mfa-off"], ids=lambda c: c
)
def test_an_unknown_user_is_an_error_with_exit_2(admin: Admin, command: str) -> None:
    result = admin(command, "nobody-by-this-name")

    assert result.code == 2
    assert result.err == "error: no user 'nobody-by-this-name'\n"


# ------------------------------------------------------------------ disable and enable


def test_disable_and_enable(
    admin: Admin, api: Api, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD, email=f"{unique('dis')}@example.com")
    pair = log_in(api, user["username"]).json_body

    disabled = admin("disable", user["email"])

    assert disabled.code == 0, disabled.err
    assert disabled.out == f"{user['username']}\tdisabled\n"
    assert_problem(log_in(api, user["username"]), 401, "invalid_credentials")
    assert_problem(api.get("/protected", token=pair["access_token"]), 401, "invalid_token")
    refreshed = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
    assert_problem(refreshed, 401, "invalid_token")

    enabled = admin("enable", user["username"])

    assert enabled.code == 0, enabled.err
    assert enabled.out == f"{user['username']}\tenabled\n"
    again = log_in(api, user["username"])
    assert again.status_code == 200, again.body
    assert works(api, again.json_body["access_token"])


# ------------------------------------------------------------------ export and import


def test_rotate_due_says_nothing_is_due_for_a_fresh_ring(admin: Admin) -> None:
    """The scheduled step, by hand: a ring made today has nothing due."""
    result = admin("rotate-due")

    assert result.code == 0, result.err
    assert result.out == "nothing due\n"


def test_mfa_off_lets_the_owner_in_with_the_password_alone(
    admin: Admin, api: Api, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD)
    token = log_in(api, user["username"]).json_body["access_token"]
    enable_totp(api, token)
    assert_problem(log_in(api, user["username"]), 401, "mfa_required")

    turned_off = admin("mfa-off", user["username"])

    assert turned_off.code == 0, turned_off.err
    assert turned_off.out == f"{user['username']}\tmfa off\n"
    again = log_in(api, user["username"])
    assert again.status_code == 200, again.body
    events = api.get("/me/activity", token=again.json_body["access_token"]).json_body["events"]
    assert ("mfa_disabled", "admin") in [(e["type"], e["outcome"]) for e in events]


def exported(admin: Admin, *argv: str) -> dict[str, dict[str, Any]]:
    result = admin("export", *argv)
    assert result.code == 0, result.err
    users = [json.loads(line) for line in result.lines]
    return {u["username"]: u for u in users}


def import_lines(admin: Admin, tmp_path: Path, *lines: str) -> Result:
    source = tmp_path / f"{unique('import')}.jsonl"
    source.write_text("".join(f"{line}\n" for line in lines), "utf-8")
    return admin("import", "--input", str(source))


def test_export_writes_every_user_with_the_password_hash(
    admin: Admin, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD, email=f"{unique('exp')}@example.com")

    users = exported(admin)

    line = users[user["username"]]
    assert line["id"] == user["user"]["id"]
    assert line["email"] == user["email"]
    assert line["disabled"] is False
    assert line["password_hash"].startswith("bcrypt-sha256$")
    assert "password" not in line


def test_export_to_a_file_writes_the_same_lines(
    admin: Admin, tmp_path: Path, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD)
    output = tmp_path / "users.jsonl"

    result = admin("export", "--output", str(output))

    assert (result.code, result.out) == (0, "")
    written = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert user["user"]["id"] in {u["id"] for u in written}


def test_an_exported_user_imported_under_a_new_name_keeps_the_password(
    admin: Admin, api: Api, tmp_path: Path, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD, email=f"{unique('move')}@example.com")
    line = exported(admin)[user["username"]]
    moved_name = unique("moved")
    moved_email = f"{moved_name}@example.com"
    moved = {**line, "id": None, "username": moved_name, "email": moved_email}

    result = import_lines(admin, tmp_path, json.dumps(moved))

    assert result.code == 0, result.out + result.err
    assert result.out == f"imported {moved_name}\n"
    for login_name in (moved_name, moved_email):
        response = log_in(api, login_name)
        assert response.status_code == 200, response.body
    me = api.get("/protected", token=log_in(api, moved_name).json_body["access_token"])
    assert me.json_body["user"]["id"] != user["user"]["id"]
    assert_problem(log_in(api, moved_name, "not the password"), 401, "invalid_credentials")


def test_a_disabled_user_stays_disabled_through_export_and_import(
    admin: Admin,
    api: Api,
    tmp_path: Path,
    app_services: wiring.Services,
    new_user: Callable[..., dict[str, Any]],
) -> None:
    user = new_user(password=PASSWORD)
    app_services.accounts.set_disabled(user["user"]["id"], True)
    line = exported(admin)[user["username"]]
    assert line["disabled"] is True
    moved_name = unique("moved")

    result = import_lines(admin, tmp_path, json.dumps({**line, "id": None, "username": moved_name}))

    assert result.code == 0, result.out
    assert_problem(log_in(api, moved_name), 401, "invalid_credentials")
    assert admin("enable", moved_name).code == 0
    assert log_in(api, moved_name).status_code == 200


def test_a_plain_bcrypt_hash_from_another_store_logs_in_with_no_reset(
    admin: Admin, api: Api, tmp_path: Path
) -> None:
    password = "a password from the old system"
    password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode("ascii")
    username = unique("legacy")
    email = f"{username}@example.com"
    line = {"username": username, "email": email, "password_hash": password_hash}

    result = import_lines(admin, tmp_path, json.dumps(line))

    assert result.code == 0, result.out + result.err
    assert result.out == f"imported {username}\n"
    for login_name in (username, username.upper(), email):
        response = log_in(api, login_name, password)
        assert response.status_code == 200, response.body
    assert_problem(log_in(api, username, "wrong password"), 401, "invalid_credentials")


def test_import_reads_standard_input_without_input(
    admin: Admin, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode("ascii")
    username = unique("stdin")
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO(json.dumps({"username": username, "password_hash": password_hash})),
    )

    result = admin("import")

    assert (result.code, result.out) == (0, f"imported {username}\n")
    assert log_in(api, username).status_code == 200


def test_import_reports_a_taken_username_and_carries_on(
    admin: Admin, api: Api, tmp_path: Path, new_user: Callable[..., dict[str, Any]]
) -> None:
    taken = new_user(password=PASSWORD)
    password_hash = bcrypt.hashpw(b"the intruder's password", bcrypt.gensalt(4)).decode()
    fresh = unique("fresh")

    result = import_lines(
        admin,
        tmp_path,
        json.dumps({"username": fresh, "password_hash": password_hash}),
        json.dumps({"username": taken["username"].upper(), "password_hash": password_hash}),
    )

    assert result.code == 1
    assert result.lines == [f"imported {fresh}", "line 2: That username is already registered."]
    # The existing account is untouched; the good line was imported.
    assert log_in(api, taken["username"]).status_code == 200
    assert log_in(api, taken["username"], "the intruder's password").status_code == 401
    assert log_in(api, fresh, "the intruder's password").status_code == 200


def test_import_reports_a_taken_email(
    admin: Admin, tmp_path: Path, new_user: Callable[..., dict[str, Any]]
) -> None:
    email = f"{unique('taken')}@example.com"
    new_user(email=email)
    password_hash = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    line = {"username": unique("other"), "email": email.upper(), "password_hash": password_hash}

    result = import_lines(admin, tmp_path, json.dumps(line))

    assert result.code == 1
    assert result.lines == ["line 1: That email address is already registered."]


def test_reimporting_an_existing_user_is_reported_and_changes_nothing(
    admin: Admin, api: Api, tmp_path: Path, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD)
    line = exported(admin)[user["username"]]
    other_hash = bcrypt.hashpw(b"another password", bcrypt.gensalt(4)).decode()

    result = import_lines(admin, tmp_path, json.dumps({**line, "password_hash": other_hash}))

    assert result.code == 1
    assert result.out.startswith("line 1: ")
    assert log_in(api, user["username"]).status_code == 200
    assert log_in(api, user["username"], "another password").status_code == 401


def test_import_reports_each_malformed_line_with_its_number(
    admin: Admin, api: Api, tmp_path: Path
) -> None:
    good_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    good = unique("good")
    lines = [
        "not json",
        "[1, 2]",
        json.dumps({"username": unique("nohash")}),
        json.dumps({"username": unique("md5"), "password_hash": "md5$abc"}),
        json.dumps({"username": None, "password_hash": good_hash}),
        json.dumps({"username": "bad name!", "password_hash": good_hash}),
        json.dumps({"username": unique("badid"), "id": "xyz", "password_hash": good_hash}),
        "",
        json.dumps({"username": good, "password_hash": good_hash}),
    ]

    result = import_lines(admin, tmp_path, *lines)

    assert result.code == 1
    reported = result.lines[:-1]
    assert [r.split(":")[0] for r in reported] == [f"line {n}" for n in range(1, 8)]
    assert all(len(r) > len("line 1: ") for r in reported)
    assert "Traceback" not in result.out + result.err
    assert result.lines[-1] == f"imported {good}"
    assert log_in(api, good).status_code == 200


def test_an_import_with_only_good_lines_exits_0(admin: Admin, tmp_path: Path) -> None:
    password_hash = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    names = [unique("batch") for _ in range(3)]

    result = import_lines(
        admin,
        tmp_path,
        *(json.dumps({"username": n, "password_hash": password_hash}) for n in names),
    )

    assert result.code == 0
    assert result.lines == [f"imported {n}" for n in names]


# ------------------------------------------------------------------ OAuth clients


def create_client(admin: Admin, *argv: str) -> dict[str, Any]:
    result = admin("clients", "create", *argv)
    assert result.code == 0, result.err
    created: dict[str, Any] = json.loads(result.out)
    return created


def test_clients_create_prints_the_secret_once_and_stores_only_its_hash(
    admin: Admin, app_services: wiring.Services
) -> None:
    created = create_client(
        admin, "--name", "Wiki", "--redirect-uri", "https://wiki.example/callback"
    )

    assert created["name"] == "Wiki"
    assert created["redirect_uris"] == ["https://wiki.example/callback"]
    assert created["grant_types"] == ["authorization_code", "refresh_token"]
    assert created["public"] is False
    secret = created["client_secret"]
    assert len(secret) >= 43
    stored = app_services.store.get_client(created["client_id"])
    assert stored is not None
    assert secret not in json.dumps(stored.__dict__)
    assert app_services.clients.secret_matches(stored, secret)
    assert not app_services.clients.secret_matches(stored, secret[:-1] + "x")
    listed = [json.loads(line) for line in admin("clients", "list").lines]
    mine = [c for c in listed if c["client_id"] == created["client_id"]]
    assert mine == [{k: v for k, v in created.items() if k != "client_secret"}]
    assert all("client_secret" not in c and "secret_hash" not in c for c in listed)


def test_a_public_client_has_no_secret_and_cannot_use_client_credentials(admin: Admin) -> None:
    created = create_client(
        admin, "--name", "SPA", "--public", "--redirect-uri", "http://127.0.0.1:5173/cb"
    )
    assert "client_secret" not in created
    assert created["token_endpoint_auth_method"] == "none"

    refused = admin(
        "clients", "create", "--name", "Job", "--public", "--grant-type", "client_credentials"
    )
    assert refused.code == 2
    assert "client_credentials" in refused.err
    rotate = admin("clients", "rotate-secret", created["client_id"])
    assert rotate.code == 2 and "No such confidential client" in rotate.err


@pytest.mark.parametrize(
    "uri",
    [
        "http://wiki.example/callback",  # plain http off loopback
        "https://wiki.example/callback#frag",  # a fragment
        "https://*.example/callback",  # no patterns: it is not a host
        "javascript:alert(1)",  # not a reversed-domain app scheme
        "/callback",  # relative
        "https://wiki.example/call back",
        "https://user:pass@wiki.example/cb",  # credentials in the URI
    ],
)
def test_clients_create_refuses_a_redirect_uri_that_could_leak_a_code(
    admin: Admin, uri: str
) -> None:
    result = admin("clients", "create", "--name", "Bad", "--redirect-uri", uri)
    assert result.code == 2
    assert "redirect_uris" in result.err and result.out == ""


def test_native_and_loopback_redirect_uris_are_accepted(admin: Admin) -> None:
    created = create_client(
        admin,
        "--name",
        "Phone",
        "--public",
        "--redirect-uri",
        "com.example.app:/oauth/callback",
        "--redirect-uri",
        "http://localhost:8765/cb",
    )
    assert created["redirect_uris"] == [
        "com.example.app:/oauth/callback",
        "http://localhost:8765/cb",
    ]


def test_client_credentials_needs_no_redirect_uri_but_a_code_client_does(admin: Admin) -> None:
    job = create_client(admin, "--name", "Nightly job", "--grant-type", "client_credentials")
    assert job["grant_types"] == ["client_credentials"] and job["redirect_uris"] == []
    result = admin("clients", "create", "--name", "No redirect")
    assert result.code == 2 and "redirect URI" in result.err


def test_rotate_secret_replaces_it_at_once_and_delete_removes_the_client(
    admin: Admin, app_services: wiring.Services
) -> None:
    created = create_client(admin, "--name", "CRM", "--redirect-uri", "https://crm.example/cb")
    client_id, old_secret = created["client_id"], created["client_secret"]

    rotated = admin("clients", "rotate-secret", client_id)

    assert rotated.code == 0, rotated.err
    new_secret = json.loads(rotated.out)["client_secret"]
    stored = app_services.store.get_client(client_id)
    assert stored is not None and stored.secret_rotated_at > 0
    assert app_services.clients.secret_matches(stored, new_secret)
    assert not app_services.clients.secret_matches(stored, old_secret)

    assert admin("clients", "delete", client_id).code == 0
    assert app_services.clients.get(client_id) is None
    again = admin("clients", "delete", client_id)
    assert again.code == 2 and "No such client" in again.err
    listed = admin("clients", "list").out
    assert client_id not in listed
