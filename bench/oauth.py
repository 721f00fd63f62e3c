"""The OpenID Provider's hot paths: the code exchange, a refresh, userinfo (DESIGN.md).

- ``POST /oauth2/token`` (authorization_code) through the test client, each exchange
  with a fresh code, vs what it cannot avoid: RS256-signing its two tokens (an access
  token and an ID token of the same claims) with pyjwt and the key ring's key, plus its
  own DynamoDB calls replayed. The claim's condition (an unspent code) cannot hold for
  a replay, so the replayed UpdateItem has it dropped: it still writes, as the
  subject's does. Budget: at most 1.3x.
- ``GET /oauth2/userinfo`` vs a bare Chalice route that verifies the same token with
  pyjwt and replays userinfo's one read (like ``GET /protected``'s baseline). Budget:
  at most 1.3x.
- Round trips: a code exchange and an OAuth refresh at most 3 each.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from chalice.test import Client, HTTPResponse

from bench import PROJECT_DIR, bare_app
from bench.fixture import STAGE, Fixture, expect, send
from bench.report import Measured, Report
from bench.roundtrips import Calls, recorded
from bench.rows import calls_row, ratio_row, reported_row
from bench.stats import interleave
from chalicelib.crypto.keys import ALGORITHM
from chalicelib.crypto.tokens import new_id
from chalicelib.oauth.clients import ClientRegistration
from chalicelib.oauth.tokens import _ACCESS_CLAIMS
from chalicelib.store import items, table

TOKEN_BUDGET = 1.3
USERINFO_BUDGET = 1.3
EXCHANGE_CALLS_BUDGET = 3
REFRESH_CALLS_BUDGET = 3
REDIRECT_URI = "https://rp.example/callback"
FORM = "application/x-www-form-urlencoded"


class _Rp:
    """A confidential client of the bench, and the requests it makes."""

    def __init__(self, fx: Fixture) -> None:
        record, secret = fx.services.clients.register(
            ClientRegistration(name="Bench", redirect_uris=(REDIRECT_URI,))
        )
        self.fx = fx
        self.client_id = record.id
        self.auth = "Basic " + base64.b64encode(f"{record.id}:{secret}".encode()).decode()
        self.verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(self.verifier.encode()).digest()
        self.challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def code(self) -> str:
        """A fresh code for the bench user: authorize, then the page's allow."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid profile email offline_access",
                "state": "s",
                "nonce": "n",
                "code_challenge": self.challenge,
                "code_challenge_method": "S256",
            }
        )
        started = expect(self.fx.api.request("GET", "/oauth2/authorize?" + query), 302)
        location = str(started.headers["Location"])
        request_id = parse_qs(urlsplit(location).query)["request_id"][0]
        path = f"/oauth2/requests/{request_id}"
        decided = expect(send(self.fx.api, "POST", path, {"decision": "allow"}, self.fx.token), 200)
        redirect_to = str(decided.json_body["redirect_to"])
        return parse_qs(urlsplit(redirect_to).query)["code"][0]

    def token(self, form: dict[str, str]) -> HTTPResponse:
        headers = {"Content-Type": FORM, "Authorization": self.auth}
        return self.fx.api.request(
            "POST", "/oauth2/token", headers=headers, body=urlencode(form).encode()
        )

    def exchange(self, code: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": self.verifier,
        }
        tokens: dict[str, Any] = expect(self.token(form), 200).json_body
        return tokens


def _always_writing(calls: Calls) -> Calls:
    """The calls, with the code claim's condition dropped, so every replay writes."""
    rewritten = Calls(operations=list(calls.operations), sends=calls.sends)
    for operation, recorded_params in calls.params:
        params = copy.deepcopy(recorded_params)
        if operation == "UpdateItem" and "spent_at" in params.get("UpdateExpression", ""):
            for name in ("ConditionExpression", "ReturnValuesOnConditionCheckFailure"):
                params.pop(name, None)
            params["ExpressionAttributeValues"].pop(":zero", None)
        rewritten.params.append((operation, params))
    return rewritten


def measure(fx: Fixture, report: Report, *, rounds: int = 30, batch: int = 4) -> None:
    rp = _Rp(fx)
    code = rp.code()
    with recorded(fx.services.store._client) as exchange_calls:
        first = rp.exchange(code)
    _exchange(fx, report, rp, exchange_calls, first, rounds=rounds, batch=batch)
    with recorded(fx.services.store._client) as refresh_calls:
        form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        expect(rp.token(form), 200)
    report.add(
        calls_row("DynamoDB calls per OAuth refresh", refresh_calls, REFRESH_CALLS_BUDGET),
        f"OAuth refresh round trips: botocore `before-call` events during one "
        f"POST /oauth2/token (grant_type=refresh_token): {refresh_calls.summary()}.",
    )
    _userinfo(fx, report, rp)


def _exchange(
    fx: Fixture,
    report: Report,
    rp: _Rp,
    calls: Calls,
    sample: dict[str, Any],
    *,
    rounds: int,
    batch: int,
) -> None:
    warmup = 10
    # Codes live 60 s: made just before, enough for every timed and warm-up exchange.
    codes = [rp.code() for _ in range(rounds * batch + warmup)]
    replay = _always_writing(calls).replayer(table.connect(fx.settings), strict=True)
    signer = fx.services.tokens.signing.ring.signing
    access_claims = jwt.decode(sample["access_token"], options={"verify_signature": False})
    id_claims = jwt.decode(sample["id_token"], options={"verify_signature": False})
    headers = {"kid": signer.kid}

    def subject() -> None:
        rp.exchange(codes.pop())

    def baseline() -> None:
        replay()
        jwt.encode({**access_claims, "jti": new_id()}, signer.private_key, ALGORITHM, headers)
        jwt.encode(id_claims, signer.private_key, ALGORITHM, headers)

    paired = interleave(subject, baseline, rounds=rounds, batch=batch, warmup=warmup)
    report.measured["oauth_token"] = Measured(paired, calls)
    report.add(
        ratio_row("POST /oauth2/token (code, test client)", paired, TOKEN_BUDGET),
        f"POST /oauth2/token (authorization_code with PKCE, client_secret_basic): median "
        f"per-exchange time through the adapted test client, each with a fresh code, vs "
        f"RS256-signing an access token and an ID token of the same claims with pyjwt plus "
        f"the exchange's own DynamoDB calls replayed ({calls.summary()}; the claim's "
        f"unspent-code condition dropped so every replay writes). {rounds} interleaved "
        f"rounds of {batch}; {paired.spread()}.",
    )
    report.add(
        calls_row("DynamoDB calls per code exchange", calls, EXCHANGE_CALLS_BUDGET),
        f"Code exchange round trips: botocore `before-call` events during one "
        f"POST /oauth2/token (authorization_code): {calls.summary()}.",
    )


def _userinfo(fx: Fixture, report: Report, rp: _Rp, *, rounds: int = 150, batch: int = 5) -> None:
    access = rp.exchange(rp.code())["access_token"]
    with recorded(fx.services.store._client) as calls:
        expect(send(fx.api, "GET", "/oauth2/userinfo", token=access), 200)
    client_tokens = fx.services.client_tokens
    bare = bare_app.build(
        fx.services.tokens.signing.ring.signing.private_key.public_key(),
        audience=client_tokens.audience,
        issuer=client_tokens.issuer,
        session_alive=calls.replayer(table.connect(fx.settings)),
        required=_ACCESS_CLAIMS,
    )
    claims = fx.services.client_tokens.verify_access_token(access)
    session_key = items.session_key(claims.user_id, claims.session_id)
    client = table.connect(fx.settings)

    def one_get_item() -> bool:
        found = client.get_item(
            TableName=fx.settings.table_name, Key=session_key, ConsistentRead=True
        )
        return "Item" in found

    single = bare_app.build(
        fx.services.tokens.signing.ring.signing.private_key.public_key(),
        audience=client_tokens.audience,
        issuer=client_tokens.issuer,
        session_alive=one_get_item,
        required=_ACCESS_CLAIMS,
    )
    with (
        Client(bare, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as bare_client,
        Client(single, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as single_client,
    ):
        plain, floor = bare_client.http, single_client.http

        def subject() -> None:
            expect(send(fx.api, "GET", "/oauth2/userinfo", token=access), 200)

        def baseline() -> None:
            expect(send(plain, "GET", bare_app.PATH, token=access), 200)

        def get_item_floor() -> None:
            expect(send(floor, "GET", bare_app.PATH, token=access), 200)

        paired = interleave(subject, baseline, rounds=rounds, batch=batch, warmup=100)
        against_get = interleave(subject, get_item_floor, rounds=rounds, batch=batch, warmup=50)
    report.measured["userinfo"] = Measured(paired, calls)
    report.add(
        ratio_row("GET /oauth2/userinfo (test client)", paired, USERINFO_BUDGET),
        f"GET /oauth2/userinfo: median per-request time through the adapted test client vs "
        f"a bare Chalice route that runs `jwt.decode` on the same client access token "
        f"(same key, audience, issuer, required claims) plus userinfo's own DynamoDB calls "
        f"replayed ({calls.summary()}). {rounds} interleaved rounds of {batch}; "
        f"{paired.spread()}.",
    )
    report.add(
        reported_row("GET /oauth2/userinfo vs verify + one GetItem", against_get),
        "The same subject against a floor whose one read is a GetItem of the session item "
        "alone: what userinfo would cost if it needed no claims from the user item. It "
        "reads both in one TransactGetItems (one round trip, a little dearer on DynamoDB "
        "Local than a GetItem), because claims copied onto the session would go stale "
        f"when the user changes their email; reported, not judged. {against_get.spread()}.",
    )
