"""Signing in to another app with Gatehouse, on the web page in Debian's Chromium.

A relying party is registered with the admin command line; Chromium opens its
authorization URL, Gatehouse sends it to the page with a ``request_id``, the page signs
the user in and asks for consent, and the browser ends at the app's redirect URI. The
app's site is a loopback HTTP server of the test's own that answers every page with one
line, so the test reads exactly where the browser went (Playwright's routing would not
do: it does not see the redirects Gatehouse answers with). Its back channel (the token
exchange, userinfo) is plain HTTP to the runner.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from playwright.sync_api import Page, Route, expect

from scripts.dynamodb_local import free_port
from tests.e2e.browser import (
    PHONE,
    Site,
    assert_no_horizontal_scroll,
    by_id,
    expect_dashboard,
    log_in,
    screenshot,
    unique,
    view,
)
from tests.e2e.relyingparty import Authorization, Backchannel, Registered, query_of, register_client
from tests.e2e.runner import Runner

pytestmark = pytest.mark.e2e

#: Markup in the name proves the page writes it as text: as HTML it would be emphasis.
APP_NAME = "Team Wiki <em>beta</em>"
SCOPE_WORDS = [
    "Know who you are (your account id)",
    "See your username and display name",
    "See your email address and whether it is verified",
    "Stay signed in to this app when you are not using it",
]


#: Calls window.consentShown() (exposed by the test) if the consent screen ever shows.
WATCH_CONSENT = """
document.addEventListener("DOMContentLoaded", () => {
  const consent = document.getElementById("view-consent");
  if (!consent) return;
  new MutationObserver(() => {
    if (!consent.hidden) window.consentShown();
  }).observe(consent, { attributes: true, attributeFilter: ["hidden"] });
});
"""


#: The page's requests about an app's sign-in request (GET and POST).
DECISIONS = re.compile(r"/oauth2/requests/[^/?]+$")
LOGIN_REQUIRED = json.dumps(
    {"type": "about:blank", "title": "Sign in again", "status": 401, "code": "login_required"}
)
UNAVAILABLE = json.dumps(
    {"type": "about:blank", "title": "Unavailable", "status": 503, "code": "service_unavailable"}
)


class AppSite(BaseHTTPRequestHandler):
    """The app's own site: every page is one line (the callback's query is in its URL)."""

    def do_GET(self) -> None:
        body = b'<!doctype html><link rel="icon" href="data:,"><title>Wiki</title><p>Wiki.</p>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the browser's address, not this log."""


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    """The app's site on a loopback port (http on loopback may be registered: RFC 8252)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), AppSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def wiki(shared_runner: Runner, app_url: str) -> Registered:
    return register_client(shared_runner, APP_NAME, (f"{app_url}/callback",))


@pytest.fixture
def user(site: Site) -> str:
    username = unique("rp")
    site.api().register(username, email=f"{username}@example.com")
    return username


def issuer(site: Site) -> str:
    return site.url.rstrip("/")


def authorization(site: Site, client: Registered, **extra: str) -> Authorization:
    return Authorization(client, issuer(site), extra=extra)


@pytest.fixture
def page(site: Site) -> Page:
    return site.new_page()


def back_at_the_app(page: Page, request: Authorization) -> dict[str, str]:
    """Wait for the browser to reach the redirect URI; the query it carries."""
    page.wait_for_url(lambda url: url.startswith(request.redirect_uri + "?"))
    back = query_of(page.url)
    assert back["state"] == request.state
    assert back["iss"] == request.issuer  # RFC 9207
    return back


def expect_consent(page: Page, username: str) -> None:
    expect(by_id(page, "consent-app")).to_have_text(APP_NAME)
    expect(by_id(page, "consent-title")).to_be_focused()
    expect(by_id(page, "consent-account")).to_have_text(f"Signed in as {username}")
    expect(by_id(page, "consent-scopes").locator("li")).to_have_text(SCOPE_WORDS)
    expect(by_id(page, "consent-return")).to_have_text(
        re.compile(r"^You then go back to http://127\.0\.0\.1:\d+\.$")  # the app's origin
    )


def sign_in_on_the_page(page: Page, site: Site, username: str) -> None:
    page.goto(site.url)
    log_in(page, username)
    expect_dashboard(page, username)


def tokens_for(site: Site, request: Authorization, code: str) -> dict[str, Any]:
    status, tokens = Backchannel(site.runner).exchange(request, code)
    assert status == 200, tokens
    return dict(tokens)


# ------------------------------------------------------------------ scenarios


def test_an_app_sends_the_user_here_who_signs_in_allows_and_goes_back_with_a_code(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    request = authorization(site, wiki)
    page.goto(request.url)

    # On the page, the request taken out of the address, and asked to sign in first.
    expect(by_id(page, "login-context")).to_have_text(
        "An app asks you to sign in with your Gatehouse account. Log in to continue."
    )
    assert page.url == site.url
    log_in(page, user)

    expect_consent(page, user)
    expect(by_id(page, "consent-app").locator("em")).to_have_count(0)
    screenshot(page, "consent.png")
    page.get_by_role("button", name="Allow").click()

    back = back_at_the_app(page, request)
    tokens = tokens_for(site, request, back["code"])
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["aud"] == wiki.client_id and claims["nonce"] == request.nonce
    assert claims["preferred_username"] == user
    assert tokens["refresh_token"]  # offline_access, as the screen said


def test_deny_sends_access_denied_back_to_the_app(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    sign_in_on_the_page(page, site, user)
    request = authorization(site, wiki)
    page.goto(request.url)

    expect_consent(page, user)
    page.get_by_role("button", name="Deny").click()

    back = back_at_the_app(page, request)
    assert back["error"] == "access_denied" and "code" not in back


def test_a_second_request_for_the_same_scopes_goes_straight_back(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    sign_in_on_the_page(page, site, user)
    first = authorization(site, wiki)
    page.goto(first.url)
    by_id(page, "consent-allow").click()
    back_at_the_app(page, first)
    shown: list[bool] = []
    page.expose_function("consentShown", lambda: shown.append(True))
    page.add_init_script(WATCH_CONSENT)

    # Allowed before and signed in: the authorization endpoint itself answers (it knows
    # the browser's Gatehouse sign-in).
    again = authorization(site, wiki)
    page.goto(again.url)
    tokens_for(site, again, back_at_the_app(page, again)["code"])

    # Signed out first: the page signs the user in, reads "remembered" (these scopes or
    # fewer were allowed) and allows at once.
    page.goto(site.url)
    by_id(page, "logout").click()
    expect(by_id(page, "flash")).to_have_text("You have logged out.")
    after = authorization(site, wiki)
    after.scope = "openid profile"
    page.goto(after.url)
    log_in(page, user)
    tokens_for(site, after, back_at_the_app(page, after)["code"])
    assert shown == []

    # prompt=consent asks again even so (and the watch above would have seen it).
    asked = authorization(site, wiki, prompt="consent")
    page.goto(asked.url)
    expect_consent(page, user)
    assert shown


def test_prompt_login_asks_for_the_password_again_and_replaces_the_old_session(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    sign_in_on_the_page(page, site, user)
    request = authorization(site, wiki, prompt="login")
    asked_at = int(time.time())
    page.goto(request.url)

    login = view(page, "login")
    expect(by_id(page, "login-context")).to_have_text(
        f"{APP_NAME} asks you to sign in again to confirm it is you."
    )
    expect(login.get_by_label("Username or email")).to_have_value(user)
    expect(login.get_by_label("Password", exact=True)).to_be_focused()
    # A sign-in counts for prompt=login from the second after the request (whole
    # seconds on both sides); a person takes longer than that to type a password.
    time.sleep(max(0.0, asked_at + 1.1 - time.time()))
    log_in(page, user)

    expect_consent(page, user)
    by_id(page, "consent-allow").click()
    back = back_at_the_app(page, request)
    claims = jwt.decode(
        tokens_for(site, request, back["code"])["id_token"], options={"verify_signature": False}
    )
    assert claims["auth_time"] > asked_at

    # The session the fresh sign-in replaced is gone: one device, this one.
    page.goto(site.url)
    expect_dashboard(page, user)
    expect(by_id(page, "session-item")).to_have_count(1)


def test_connected_apps_lists_the_app_and_remove_access_ends_its_tokens(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    sign_in_on_the_page(page, site, user)
    expect(by_id(page, "app-empty")).to_have_text("No apps are connected.")
    request = authorization(site, wiki)
    page.goto(request.url)
    by_id(page, "consent-allow").click()
    tokens = tokens_for(site, request, back_at_the_app(page, request)["code"])
    backchannel = Backchannel(site.runner)
    assert backchannel.userinfo(tokens["access_token"])[0] == 200

    page.goto(site.url)
    expect_dashboard(page, user)
    app = by_id(page, "app-item")
    expect(app).to_have_count(1)
    expect(app.get_by_test_id("app-name")).to_have_text(APP_NAME)
    expect(app.get_by_test_id("app-scopes").locator("li")).to_have_text(SCOPE_WORDS)
    expect(app.get_by_test_id("app-details")).to_contain_text("last used")
    expect(by_id(page, "app-empty")).to_be_hidden()
    screenshot(page, "dashboard-apps.png")

    app.get_by_role("button", name="Remove access").click()

    expect(by_id(page, "flash")).to_have_text(f"{APP_NAME} can no longer use your account.")
    expect(by_id(page, "app-item")).to_have_count(0)
    expect(by_id(page, "app-empty")).to_be_visible()
    expect(page.get_by_role("heading", name="Connected apps")).to_be_focused()
    status, problem = backchannel.userinfo(tokens["access_token"])
    assert status == 401, problem

    page.reload()
    expect_dashboard(page, user)
    expect(by_id(page, "app-empty")).to_be_visible()


def test_a_request_that_has_ended_says_so_in_plain_words(site: Site, page: Page, user: str) -> None:
    sign_in_on_the_page(page, site, user)
    page.goto(site.url + "?request_id=" + "x" * 43)

    expect(by_id(page, "request-title")).to_have_text("This sign-in request has ended")
    expect(by_id(page, "request-message")).to_contain_text("has expired")
    assert page.url == site.url
    page.get_by_role("button", name="Go to your dashboard").click()
    expect_dashboard(page, user)


def test_an_allow_refused_as_login_required_asks_for_a_fresh_sign_in(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    """The API answers an allow from a sign-in the request finds too old (``max_age``
    passed while the consent screen showed) with 401 ``login_required``; here that
    answer is made once by Playwright, rather than waited for."""
    sign_in_on_the_page(page, site, user)
    request = authorization(site, wiki)
    page.goto(request.url)
    expect_consent(page, user)

    refused: list[str] = []

    def too_old(route: Route) -> None:
        if route.request.method != "POST" or refused:
            route.fallback()
            return
        refused.append(route.request.url)
        route.fulfill(status=401, content_type="application/problem+json", body=LOGIN_REQUIRED)

    page.route(DECISIONS, too_old)
    by_id(page, "consent-allow").click()

    expect(by_id(page, "login-context")).to_have_text(
        f"{APP_NAME} asks you to sign in again to confirm it is you."
    )
    log_in(page, user)
    expect_consent(page, user)
    by_id(page, "consent-allow").click()
    assert "code" in back_at_the_app(page, request)
    assert len(refused) == 1


def test_a_request_the_server_cannot_read_offers_to_try_again(
    site: Site, page: Page, wiki: Registered, user: str
) -> None:
    sign_in_on_the_page(page, site, user)

    page.route(
        DECISIONS,
        lambda route: route.fulfill(
            status=503, content_type="application/problem+json", body=UNAVAILABLE
        ),
        times=1,
    )
    request = authorization(site, wiki)
    page.goto(request.url)

    expect(by_id(page, "request-message")).to_have_text(
        "The service is temporarily unavailable. Try again in a moment."
    )
    page.get_by_role("button", name="Try again").click()
    expect_consent(page, user)


def test_the_consent_screen_fits_a_phone(site: Site, wiki: Registered, user: str) -> None:
    phone = site.new_page(PHONE)
    sign_in_on_the_page(phone, site, user)
    phone.goto(authorization(site, wiki).url)

    expect_consent(phone, user)
    assert_no_horizontal_scroll(phone, PHONE["width"])
    screenshot(phone, "consent-phone.png")
