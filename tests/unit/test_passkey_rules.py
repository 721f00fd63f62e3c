"""The small rules of passkeys, by themselves: settings, the clone signal, base64url,
names."""

from __future__ import annotations

import pytest

from chalicelib.accounts.passkeys import check_name, cloned
from chalicelib.crypto.credentials import b64decode, b64encode
from chalicelib.platform import errors
from chalicelib.platform.config import Settings


def test_settings_default_to_the_local_page_and_read_the_environment() -> None:
    default = Settings.from_env({})
    assert default.webauthn_rp_id == "localhost"
    assert default.webauthn_origins == frozenset({"http://localhost:8000"})
    assert (default.webauthn_rp_name, default.passkey_limit) == ("Gatehouse", 10)
    assert default.passkey_options_limit == (300, 3000)

    custom = Settings.from_env(
        {
            "WEBAUTHN_RP_ID": "example.com",
            "WEBAUTHN_ORIGINS": "https://example.com, https://app.example.com,",
            "WEBAUTHN_RP_NAME": "Example",
            "PASSKEY_LIMIT": "3",
            "PASSKEY_OPTIONS_LIMIT": "60/600",
        }
    )
    assert custom.webauthn_rp_id == "example.com"
    assert custom.webauthn_origins == frozenset({"https://example.com", "https://app.example.com"})
    assert (custom.webauthn_rp_name, custom.passkey_limit) == ("Example", 3)
    assert custom.passkey_options_limit == (60, 600)


@pytest.mark.parametrize(
    ("stored", "presented", "is_clone"),
    [(0, 0, False), (0, 1, False), (4, 5, False), (5, 5, True), (5, 4, True), (5, 0, True)],
)
def test_the_clone_signal_is_webauthns(stored: int, presented: int, is_clone: bool) -> None:
    assert cloned(stored, presented) is is_clone


@pytest.mark.parametrize("text", ["", "A", "AA==", "A+/A", "A A", "Ä", "AB\n"])
def test_base64url_is_strict(text: str) -> None:
    assert not b64decode(text)


def test_base64url_round_trips() -> None:
    for size in range(1, 70):
        data = bytes(range(256 - size, 256))
        assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("name", ["", " ", "x" * 65, "a\u0000b", "a\u202eb", "a\nb"])
def test_a_bad_name_is_refused(name: str) -> None:
    with pytest.raises(errors.ValidationError):
        check_name(name)


def test_a_name_is_trimmed_and_may_be_any_script() -> None:
    assert check_name("  Clé de Zoë 🔑  ") == "Clé de Zoë 🔑"
