"""Passkey routes under abuse: malformed credentials (a table of cases and a Hypothesis
fuzz: 400 or 401, never 500), the per-IP throttle of the unauthenticated routes, and
two assertions racing with one sign count."""

from __future__ import annotations

import copy
import time
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.accounts.sessions import Device
from chalicelib.edge.localgateway import GatewayClient
from chalicelib.platform.config import Settings
from chalicelib.platform.errors import InvalidCredentials
from chalicelib.store.items import PasskeyUse
from chalicelib.wiring import Services
from tests.assertions import assert_problem
from tests.conftest import Api
from tests.functional.lifecycle import api_at, installed, retry_after, same_window, unique_ip
from tests.functional.passkeys import (
    Holder,
    creation_options,
    passkey_login,
    passkeys_of,
    request_options,
)
from tests.racing import all_at_once, statuses
from tests.webauthn_authenticator import (
    AT,
    RP_ID,
    UP,
    UV,
    Authenticator,
    attested_data,
    auth_data,
    b64,
    cbor,
)

VALID_SHAPE: dict[str, Any] = {
    "id": "AAAAAAAAAAAAAAAAAAAAAA",
    "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
    "type": "public-key",
    "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """``VALID_SHAPE`` with the member at dotted ``path`` set (``...`` removes it)."""
    credential = copy.deepcopy(VALID_SHAPE)
    *parents, last = path.split(".")
    target = credential
    for name in parents:
        target = target[name]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return credential


@pytest.mark.parametrize(
    ("credential", "field", "code"),
    [
        ("not an object", "credential", "invalid_type"),
        ([], "credential", "invalid_type"),
        (_with("id", ...), "credential.id", "required"),
        (_with("response", ...), "credential.response", "required"),
        (_with("response", "x"), "credential.response", "invalid_type"),
        (_with("response.signature", ...), "credential.response.signature", "required"),
        (_with("response.signature", 7), "credential.response.signature", "invalid_type"),
        (_with("response.signature", "AA=="), "credential.response.signature", "invalid_base64url"),
        (_with("response.signature", "A+/A"), "credential.response.signature", "invalid_base64url"),
        (_with("response.signature", "A"), "credential.response.signature", "invalid_base64url"),
        (_with("response.signature", ""), "credential.response.signature", "invalid_base64url"),
        (
            _with("response.clientDataJSON", "A" * 2732),
            "credential.response.clientDataJSON",
            "too_long",
        ),
        (_with("rawId", "B" * 1366), "credential.rawId", "too_long"),
        (_with("response.userHandle", "A" * 87), "credential.response.userHandle", "too_long"),
        (_with("type", "password"), "credential.type", "invalid_value"),
        (_with("extra", 1), "credential.extra", "unknown_field"),
        (_with("response.extra", 1), "credential.response.extra", "unknown_field"),
        (_with("rawId", "BBBBBBBBBBBBBBBBBBBBBB"), "credential.id", "mismatch"),
        (_with("clientExtensionResults", []), "credential.clientExtensionResults", "invalid_type"),
        (
            _with("authenticatorAttachment", "\ud800"),
            "credential.authenticatorAttachment",
            "invalid_string",
        ),
        (
            _with("response.clientDataJSON", b64(b"not json")),
            "credential.response.clientDataJSON",
            "invalid_format",
        ),
        (
            _with("response.clientDataJSON", b64(b"[1]")),
            "credential.response.clientDataJSON",
            "invalid_format",
        ),
        (
            _with("response.clientDataJSON", b64(b'{"type":1}')),
            "credential.response.clientDataJSON",
            "invalid_format",
        ),
        (
            _with("response.clientDataJSON", b64(b"\xff\xfe")),
            "credential.response.clientDataJSON",
            "invalid_format",
        ),
        (
            _with(
                "response.clientDataJSON",
                b64(b'{"type":"webauthn.get","challenge":"!","origin":"x"}'),
            ),
            "credential.response.clientDataJSON",
            "invalid_format",
        ),
        (
            _with(
                "response.clientDataJSON",
                b64(
                    b'{"type":"webauthn.get","challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","origin":"x"}'
                ),
            ),
            "credential.response.authenticatorData",
            "invalid_format",
        ),
    ],
)
def test_a_malformed_assertion_is_400_on_its_member(
    api: Api, credential: Any, field: str, code: str
) -> None:
    response = passkey_login(api, credential)

    document = assert_problem(response, 400, "validation_error")
    assert {(e["field"], e["code"]) for e in document["errors"]} == {(field, code)}


def test_a_malformed_registration_is_400(api: Api, holder: Holder) -> None:
    response_member = {"clientDataJSON": "e30", "attestationObject": b64(cbor({"fmt": "none"}))}
    credential = {**VALID_SHAPE, "response": response_member}

    answer = api.post("/me/passkeys", {"credential": credential}, token=holder.token)

    document = assert_problem(answer, 400, "validation_error")
    assert document["errors"][0]["field"].startswith("credential.response.")


def _registration_with_format(
    api: Api, token: str, fmt: Any, statement: Any = None
) -> dict[str, Any]:
    """A registration that verifies but for its attestation object's ``fmt`` (and
    ``attStmt``, an empty map unless given)."""
    authenticator = Authenticator()
    credential = authenticator.create(creation_options(api, token))
    attested = attested_data(authenticator.credentials[0])
    attestation = {
        "fmt": fmt,
        "attStmt": {} if statement is None else statement,
        "authData": auth_data(RP_ID, UP | UV | AT, 0, attested),
    }
    credential["response"]["attestationObject"] = b64(cbor(attestation))
    return credential


@pytest.mark.parametrize(
    ("fmt", "statement"),
    [
        (1, None),
        (b"none", None),
        (["none"], None),
        ({"none": 1}, None),
        (True, None),
        ("none", 1),
        ("none", "x"),
        ("none", [1]),
        ("none", b"\x00"),
    ],
)
def test_an_attestation_format_not_text_or_statement_not_a_map_is_400(
    api: Api, holder: Holder, fmt: Any, statement: Any
) -> None:
    credential = _registration_with_format(api, holder.token, fmt, statement)

    answer = api.post("/me/passkeys", {"credential": credential}, token=holder.token)

    document = assert_problem(answer, 400, "validation_error")
    assert [(e["field"], e["code"]) for e in document["errors"]] == [
        ("credential.response.attestationObject", "invalid_format")
    ]
    assert passkeys_of(api, holder.token) == [holder.passkey]
    control = _registration_with_format(api, holder.token, "none")
    assert api.post("/me/passkeys", {"credential": control}, token=holder.token).status_code == 201


def test_a_body_over_the_limit_is_400(api: Api) -> None:
    credential = _with("clientExtensionResults", {"pad": "x" * 17_000})

    assert_problem(passkey_login(api, credential), 400, "validation_error")


# ------------------------------------------------------------------ fuzz

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_B64 = st.binary(min_size=1, max_size=300).map(b64)


def cbor_or_bytes(value: Any) -> bytes:
    """CBOR of ``value`` where the test encoder can write it, else its JSON bytes."""
    try:
        return cbor(value)
    except (TypeError, ValueError):  # a float, or an integer past 64 bits
        return repr(value).encode()


def _member(shape: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(shape)


#: Well-shaped credentials whose bytes are random (or random CBOR / JSON), and arbitrary JSON.
_CREDENTIALS = st.one_of(
    _JSON,
    st.builds(
        lambda cid, response: {"id": cid, "rawId": cid, "type": "public-key", "response": response},
        _B64,
        _member(
            {
                "clientDataJSON": st.one_of(
                    _B64,
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(["webauthn.get", "webauthn.create"]) | _JSON,
                            "challenge": _B64 | _JSON,
                            "origin": st.just("http://localhost:8000") | _JSON,
                        }
                    ).map(lambda d: b64(repr(d).replace("'", '"').encode())),
                ),
                "authenticatorData": _B64,
                "signature": _B64,
                "userHandle": _B64 | st.none(),
            }
        ),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(credential=_CREDENTIALS)
def test_any_credential_is_answered_400_or_401_never_500(api: Api, credential: Any) -> None:
    response = passkey_login(api, credential)

    assert response.status_code in (400, 401), response.body


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(attestation=st.one_of(_B64, _JSON.map(lambda v: b64(cbor_or_bytes(v)))))
def test_any_attestation_object_is_400_never_500(
    api: Api, holder: Holder, attestation: str
) -> None:
    credential = {
        "id": "AAAAAAAAAAAAAAAAAAAAAA",
        "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "attestationObject": attestation},
    }

    answer = api.post("/me/passkeys", {"credential": credential}, token=holder.token)

    assert answer.status_code == 400, answer.body
    assert passkeys_of(api, holder.token) == [holder.passkey]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    flags=st.integers(0, 255),
    count=st.integers(0, 2**32 - 1),
    appended=st.one_of(
        st.binary(max_size=80),
        _JSON.map(cbor_or_bytes),
        st.tuples(st.binary(max_size=40), _JSON.map(cbor_or_bytes)).map(b"".join),
    ),
)
def test_any_signed_authenticator_data_is_answered_never_500(
    api: Api, holder: Holder, flags: int, count: int, appended: bytes
) -> None:
    """Authenticator data as the real authenticator signs it, for a live challenge,
    with any flags (AT, ED, BE, BS, none), any count and anything after it: the parse
    and the checks past it answer 200, 400 or 401, never 500."""
    credential = holder.authenticator.get(
        request_options(api), flags=flags, sign_count=count, appended=appended
    )

    assert passkey_login(api, credential).status_code in (200, 400, 401)


# ------------------------------------------------------------------ throttle and races


def test_the_unauthenticated_routes_are_throttled_per_ip(
    gateway_client: GatewayClient, holder: Holder, settings: Settings
) -> None:
    caller = api_at(gateway_client, unique_ip())
    with installed(settings, throttle_ip=(3, 30)):
        for _ in range(3):
            options = request_options(caller)
            forged = holder.authenticator.get(options, bad_signature=True)
            assert_problem(passkey_login(caller, forged), 401, "invalid_credentials")

        asked = caller.post("/passkeys/options", {})
        signed = passkey_login(
            caller, holder.authenticator.get(request_options(api_at(gateway_client, unique_ip())))
        )
        elsewhere = api_at(gateway_client, unique_ip()).post("/passkeys/options", {})

    for response in (asked, signed):
        assert_problem(response, 429, "too_many_attempts")
        assert retry_after(response) > 0
    assert elsewhere.status_code == 200


@pytest.mark.parametrize("limits", [(3, 30), (30, 3)], ids=["hourly", "daily"])
def test_sign_in_options_are_counted_per_ip_failed_or_not(
    gateway_client: GatewayClient, holder: Holder, settings: Settings, limits: tuple[int, int]
) -> None:
    """Every options answer writes a challenge, so asking is counted, not only failing."""
    same_window()
    caller = api_at(gateway_client, unique_ip())
    with installed(settings, passkey_options_limit=limits):
        issued = [request_options(caller, holder.username) for _ in range(3)]
        refused = caller.post("/passkeys/options", {})
        elsewhere = api_at(gateway_client, unique_ip()).post("/passkeys/options", {})
        signed = passkey_login(caller, holder.authenticator.get(issued[-1]))

    assert_problem(refused, 429, "too_many_attempts")
    assert retry_after(refused) <= 86400
    assert elsewhere.status_code == 200
    assert signed.status_code == 200, signed.body  # a challenge already issued still works


def test_two_assertions_racing_with_one_count_open_at_most_one_session(
    api: Api, holder: Holder, keep_os_environ: None
) -> None:
    count = holder.authenticator.credentials[0].sign_count + 5
    racing = [holder.authenticator.get(request_options(api), sign_count=count) for _ in range(4)]

    answers = all_at_once([partial(passkey_login, api, credential) for credential in racing])

    assert statuses(answers)[200] == 1, statuses(answers)
    assert statuses(answers)[401] == len(racing) - 1


def test_one_assertion_sent_eight_times_at_once_opens_one_session(
    api: Api, holder: Holder, keep_os_environ: None
) -> None:
    """A non-counting authenticator (count 0 every time): only the challenge's
    conditional delete stands between a replay and a second session."""
    holder.authenticator.counting = False
    holder.authenticator.credentials[0].sign_count = 0
    credential = holder.authenticator.get(request_options(api))

    answers = all_at_once([partial(passkey_login, api, credential) for _ in range(8)])

    assert statuses(answers) == {200: 1, 401: 7}, statuses(answers)


def test_enrolments_racing_past_the_limit_stop_at_it(
    api: Api, holder: Holder, settings: Settings, keep_os_environ: None
) -> None:
    with installed(settings, passkey_limit=3):
        pending = [Authenticator().create(creation_options(api, holder.token)) for _ in range(6)]
        enrol = partial(api.post, "/me/passkeys", token=holder.token)

        answers = all_at_once([partial(enrol, {"credential": c}) for c in pending])

    assert statuses(answers) == {201: 2, 409: 4}, statuses(answers)
    assert len(passkeys_of(api, holder.token)) == 3


def test_a_session_opens_only_on_the_sign_count_it_read(
    app_services: Services, holder: Holder
) -> None:
    user = app_services.accounts.get(holder.user_id)
    device = Device(user_agent="test", ip="127.0.0.1")
    use = PasskeyUse(user.id, holder.passkey["id"], 0, 1, int(time.time()), backed_up=False)

    app_services.sessions.start(user, device, passkey=use)

    with pytest.raises(InvalidCredentials):
        app_services.sessions.start(user, device, passkey=use)
