"""DynamoDB round trips of a login with MFA on: still four, the code spent in the same
transaction that opens the session (login.py), not in a write of its own.

The user enrols and confirms TOTP through the routes a client would call; the login
then presents the code of the next 30-second step, which the service accepts (one step
of clock skew either side) and which is later than the step the confirmation spent.
"""

from __future__ import annotations

import time

import pyotp

from bench.fixture import PASSWORD, Fixture, expect, send, sign_up
from bench.report import Report
from bench.roundtrips import recorded
from bench.rows import calls_row

CALLS_BUDGET = 4
ACCOUNT = "bench.mfa"
STEP_SECONDS = 30


def measure(fx: Fixture, report: Report) -> None:
    """Enrol, confirm, check a code is demanded, then count one login with a code."""
    api = fx.api
    access, _ = sign_up(api, ACCOUNT)
    secret = expect(
        send(api, "POST", "/me/mfa/totp", {"password": PASSWORD}, token=access), 200
    ).json_body["secret"]
    totp = pyotp.TOTP(str(secret))
    expect(send(api, "POST", "/me/mfa/totp/confirm", {"code": totp.now()}, token=access), 200)
    body = {"username": ACCOUNT, "password": PASSWORD}
    refused = expect(send(api, "POST", "/login", body), 401).json_body
    if refused.get("code") != "mfa_required":
        raise RuntimeError(f"MFA is not on after confirming it: {refused!r}")
    code = totp.at(int(time.time()) + STEP_SECONDS)
    with recorded(fx.services.store._client) as calls:
        expect(send(api, "POST", "/login", {**body, "totp_code": code}), 200)
    report.add(
        calls_row("DynamoDB calls per login with TOTP", calls, CALLS_BUDGET),
        f"Login round trips with MFA on: a user enrolled through POST /me/mfa/totp and "
        f"/me/mfa/totp/confirm (pyotp), whose login without a code is refused "
        f"(mfa_required); botocore `before-call` events during one successful login with "
        f"the next step's TOTP code: {calls.summary()}.",
    )
