"""The sample relying party's ID token checks (examples/sign-in-with-gatehouse): every
claim its docstring says it checks is checked, on tokens signed here with keys of the
test's own. The whole flow against Gatehouse is tests/e2e/test_browser_sample_app.py."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
import time
from types import ModuleType
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from tests.conftest import PROJECT_DIR

SAMPLE = PROJECT_DIR / "examples" / "sign-in-with-gatehouse" / "relying_party.py"
ISSUER = "http://localhost:8000"
CLIENT_ID = "client-1"
NONCE = "nonce-1"
ACCESS_TOKEN = "access-token-1"


def load_sample() -> ModuleType:
    """The sample by its path (examples/ is no package: the sample is a script)."""
    spec = importlib.util.spec_from_file_location("sample_relying_party", SAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rp = load_sample()
SIGNING = RSAKey.generate_key(2048, parameters={"kid": "k1"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "k1"})


class FixedKeys:
    """The provider's JWKS, without the HTTP: the signing key's public half."""

    def get(self, reload: bool = False) -> KeySet:
        return KeySet.import_key_set({"keys": [SIGNING.as_dict(private=False)]})


def client() -> Any:
    provider = rp.Provider(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t", f"{ISSUER}/j", f"{ISSUER}/l")
    return rp.Client(provider, FixedKeys(), CLIENT_ID, "secret", "http://127.0.0.1:9000")


def at_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def id_token(key: Any = SIGNING, alg: str = "RS256", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "at_hash": at_hash(ACCESS_TOKEN),
        "preferred_username": "ada",
    }
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    token = jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])
    return {"id_token": token, "access_token": ACCESS_TOKEN}


def test_a_good_id_token_gives_its_claims() -> None:
    claims = client().verify_id_token(id_token(), NONCE)
    assert claims["sub"] == "user-1" and claims["preferred_username"] == "ada"


@pytest.mark.parametrize(
    ("tokens", "why"),
    [
        (id_token(iss="http://localhost:9999"), "another issuer"),
        (id_token(aud="another-client"), "another audience"),
        (id_token(nonce="another-nonce"), "another request's nonce"),
        (id_token(nonce=None), "no nonce"),
        (id_token(exp=int(time.time()) - 3600), "expired"),
        (id_token(exp=None), "no expiry"),
        (id_token(at_hash=at_hash("another-token")), "another access token's hash"),
        (id_token(azp="another-client"), "authorized for another party"),
        (id_token(key=STRANGER), "signed by a key not in the JWKS"),
        (id_token(key=OctKey.import_key(b"k" * 32), alg="HS256"), "HS256, not RS256"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(tokens: dict[str, Any], why: str) -> None:
    with pytest.raises(rp.SignInFailed):
        client().verify_id_token(tokens, NONCE)
