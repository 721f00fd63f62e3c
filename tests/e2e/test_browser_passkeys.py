"""Passkeys on the web page, in Debian's Chromium with its virtual authenticator.

The authenticator is Chromium's own, driven through the DevTools protocol
(``WebAuthn.enable``, ``WebAuthn.addVirtualAuthenticator``): a platform authenticator
that keeps discoverable credentials and verifies the user. With automatic presence
simulation on it answers every request at once, autofill (conditional mediation)
included, as if the person had picked the passkey; switched off, an autofill request
started meanwhile waits, as it does while a person has not touched the username field.
A modal request made while that one waits fails with "A request is already pending",
so signing in with the button proves the page aborted its autofill request first.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from playwright.sync_api import CDPSession, Page, Request, ViewportSize, expect

from tests.e2e.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    Site,
    assert_every_input_is_labelled,
    assert_no_horizontal_scroll,
    by_id,
    expect_dashboard,
    expect_login_screen,
    log_in,
    register,
    screenshot,
    unique,
    view,
)

pytestmark = pytest.mark.e2e

#: Records the mediation of every WebAuthn sign-in request the page makes, then makes it.
RECORD_REQUESTS = """
(() => {
  const get = CredentialsContainer.prototype.get;
  window.webauthnRequests = [];
  CredentialsContainer.prototype.get = function (options) {
    if (options && options.publicKey) window.webauthnRequests.push(options.mediation || "modal");
    return get.call(this, options);
  };
})();
"""
#: The same page in a browser that cannot offer passkeys in autofill.
NO_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;"
REFUSED = (
    "That passkey was not accepted: it may have been removed from your account. "
    "Log in with your password instead."
)


@dataclass
class Authenticator:
    """Chromium's virtual authenticator attached to one page."""

    cdp: CDPSession
    id: str

    @classmethod
    def attach(cls, page: Page) -> Authenticator:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        options = {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": True,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
        }
        added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        return cls(cdp, added["authenticatorId"])

    def credentials(self) -> list[dict[str, Any]]:
        answer = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return list(answer["credentials"])

    def verifies_the_user(self, on: bool) -> None:
        """Whether user verification (the fingerprint, the screen lock) succeeds."""
        self.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": on}
        )

    def answers_at_once(self, on: bool) -> None:
        """Automatic presence simulation: whether requests made from now on are answered."""
        self.cdp.send(
            "WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": self.id, "enabled": on}
        )


def open_with_authenticator(
    site: Site, *, autofill: bool = True, viewport: ViewportSize = DESKTOP
) -> tuple[Page, Authenticator]:
    """The page, with an authenticator attached and WebAuthn requests recorded."""
    page = site.new_page(viewport)
    page.add_init_script(RECORD_REQUESTS)
    if not autofill:
        page.add_init_script(NO_AUTOFILL)
    authenticator = Authenticator.attach(page)
    page.goto(site.url)
    expect_login_screen(page)
    return page, authenticator


def requests_made(page: Page) -> list[str]:
    """The WebAuthn sign-in requests made since the last call, by mediation."""
    made = page.evaluate("() => window.webauthnRequests.splice(0)")
    return [str(kind) for kind in made]


def wait_for_autofill_request(page: Page) -> None:
    """Until the page has made an autofill (conditional) request since ``requests_made``."""
    page.wait_for_function("() => window.webauthnRequests.includes('conditional')")


def add_passkey(page: Page, name: str, password: str = PASSWORD, code: str | None = None) -> None:
    panel = by_id(page, "passkeys")
    panel.get_by_label("Name (optional)").fill(name)
    panel.get_by_label("Your password").fill(password)
    if code is not None:
        panel.get_by_label("Authentication code").fill(code)
    panel.get_by_role("button", name="Add a passkey").click()


def base64url(standard: str) -> str:
    """DevTools gives credential ids in standard base64; the API in base64url."""
    return base64.urlsafe_b64encode(base64.b64decode(standard)).rstrip(b"=").decode("ascii")


def passkey_logins(page: Page) -> list[str]:
    """Every POST /passkeys/login the page sends from now on, by URL."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/passkeys/login"):
            sent.append(request.url)

    page.on("request", record)
    return sent


# ------------------------------------------------------------------ scenarios


def test_add_a_passkey_sign_in_with_it_alone_then_delete_it(site: Site) -> None:
    page, authenticator = open_with_authenticator(site)
    username = unique("pk")
    register(page, username)
    log_in(page, username)
    expect_dashboard(page, username)
    panel = by_id(page, "passkeys")
    items = by_id(page, "passkey-item")
    expect(by_id(page, "passkey-empty")).to_be_visible()

    # The password guards adding one: a wrong one never reaches the authenticator.
    add_passkey(page, "Laptop", password="not my password")
    expect(page.locator("#passkey-password-error")).to_have_text("Your password is incorrect.")
    expect(panel.get_by_label("Your password")).to_have_attribute("aria-invalid", "true")
    assert authenticator.credentials() == []

    # The person cancels at the authenticator (here: user verification fails).
    authenticator.verifies_the_user(False)
    add_passkey(page, "Laptop")
    expect(by_id(page, "passkey-error")).to_have_text(
        "No passkey was created: the request was cancelled or timed out."
    )
    expect(items).to_have_count(0)
    assert authenticator.credentials() == []
    authenticator.verifies_the_user(True)

    add_passkey(page, "Laptop")
    expect(by_id(page, "flash")).to_have_text(
        "Passkey “Laptop” added: you can sign in with it now."
    )
    expect(items).to_have_count(1)
    expect(items.get_by_test_id("passkey-name-text")).to_have_text("Laptop")
    expect(items.get_by_test_id("passkey-details")).to_contain_text("never used")
    expect(by_id(page, "passkey-empty")).to_be_hidden()
    expect(panel.get_by_label("Your password")).to_have_value("")
    (held,) = authenticator.credentials()
    assert held["rpId"] == "localhost"
    assert held["isResidentCredential"] is True
    expect(items).to_have_attribute("data-id", base64url(held["credentialId"]))
    assert_every_input_is_labelled(page)

    # The authenticator already holds one for this account (excludeCredentials).
    add_passkey(page, "Laptop again")
    expect(by_id(page, "passkey-error")).to_have_text(
        "This device already holds a passkey for your account."
    )
    expect(items).to_have_count(1)
    assert len(authenticator.credentials()) == 1

    items.get_by_role("button", name="Rename").click()
    editor = page.get_by_label("Passkey name")
    expect(editor).to_be_focused()
    editor.fill("  Work laptop ")
    editor.press("Enter")
    expect(items.get_by_test_id("passkey-name-text")).to_have_text("Work laptop")
    expect(items.get_by_role("button", name="Rename")).to_be_focused()
    screenshot(page, "dashboard-passkeys.png")

    # Log out while the authenticator holds back: the log-in screen's autofill request
    # waits, and the button must abort it before its own request can start.
    authenticator.answers_at_once(False)
    requests_made(page)
    by_id(page, "logout").click()
    expect_login_screen(page)
    username_field = view(page, "login").get_by_label("Username or email")
    expect(username_field).to_have_attribute("autocomplete", "username webauthn")
    wait_for_autofill_request(page)
    authenticator.answers_at_once(True)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_dashboard(page, username)
    assert requests_made(page) == ["conditional", "modal"]
    expect(username_field).to_have_value("")
    expect(items.get_by_test_id("passkey-details")).to_contain_text("last used")

    # Autofill: the authenticator answers the log-in screen's own request at once, as
    # when the person picks the passkey under the username field.
    with page.expect_response(lambda r: r.url.endswith("/passkeys/login")) as signed_in:
        by_id(page, "logout").click()
    assert signed_in.value.status == 200
    expect_dashboard(page, username)
    assert requests_made(page) == ["conditional"]

    # Delete it: the authenticator still holds the credential, the server refuses it.
    items.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("button", name="Keep it")).to_be_focused()
    page.get_by_role("button", name="Keep it").click()
    expect(items).to_have_count(1)
    items.get_by_role("button", name="Delete").click()
    items.get_by_role("button", name="Yes, delete it").click()
    expect(items).to_have_count(0)
    expect(by_id(page, "passkey-empty")).to_be_visible()
    expect(by_id(page, "flash")).to_have_text("The passkey “Work laptop” has been deleted.")
    assert len(authenticator.credentials()) == 1

    logins = passkey_logins(page)
    by_id(page, "logout").click()  # autofill offers it at once; the server says no
    expect_login_screen(page)
    error = by_id(page, "passkey-login-error")
    expect(error).to_have_text(REFUSED)
    expect(error).to_have_attribute("role", "alert")
    assert len(logins) == 1
    screenshot(page, "login-passkey-refused.png")

    error.evaluate("node => { node.textContent = ''; }")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(error).to_have_text(REFUSED)
    expect_login_screen(page)
    assert len(logins) == 2
    assert requests_made(page) == ["conditional", "modal"]

    log_in(page, username)  # the password still works
    expect_dashboard(page, username)


def test_with_mfa_on_a_passkey_stands_in_for_the_code(site: Site) -> None:
    api = site.api()
    username = unique("pkmfa")
    api.register(username)
    token = api.login(username)
    secret = api.ok("POST", "/me/mfa/totp", {"password": PASSWORD}, token=token)["secret"]
    codes = api.ok("POST", "/me/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, token=token)[
        "recovery_codes"
    ]

    page, authenticator = open_with_authenticator(site)
    log_in(page, username)
    view(page, "login").get_by_label("Authentication code").fill(codes[0])
    page.get_by_role("button", name="Log in", exact=True).click()
    expect_dashboard(page, username)

    # Adding a passkey asks for the second factor too.
    panel = by_id(page, "passkeys")
    code_field = panel.get_by_label("Authentication code")
    expect(code_field).to_be_visible()
    add_passkey(page, "Phone")
    expect(page.locator("#passkey-totp-error")).to_have_text(
        "Enter the code from your authenticator app."
    )
    add_passkey(page, "Phone", code="000000")
    expect(by_id(page, "passkey-error")).to_have_text("The password or code is incorrect.")
    assert authenticator.credentials() == []
    add_passkey(page, "Phone", code=codes[1])
    expect(by_id(page, "passkey-item")).to_have_count(1)

    # Password, then the passkey instead of a code.
    authenticator.answers_at_once(False)
    requests_made(page)
    by_id(page, "logout").click()
    expect_login_screen(page)
    wait_for_autofill_request(page)
    log_in(page, username)
    expect(by_id(page, "login-error")).to_contain_text("Two-factor authentication is on")
    authenticator.answers_at_once(True)
    page.get_by_role("button", name="Use a passkey instead").click()
    expect_dashboard(page, username)
    assert requests_made(page) == ["conditional", "modal"]


def test_without_autofill_the_button_signs_in_and_the_panel_fits_360_px(site: Site) -> None:
    page, authenticator = open_with_authenticator(site, autofill=False, viewport=PHONE)
    username_field = view(page, "login").get_by_label("Username or email")
    expect(username_field).to_have_attribute("autocomplete", "username")
    username = unique("pkphone")
    site.api().register(username)
    log_in(page, username)
    expect_dashboard(page, username)

    long_name = "W" * 64
    add_passkey(page, long_name)
    requests_made(page)
    item = by_id(page, "passkey-item")
    expect(item.get_by_test_id("passkey-name-text")).to_have_text(long_name)
    assert_no_horizontal_scroll(page, PHONE["width"])
    item.get_by_role("button", name="Rename").click()
    assert_no_horizontal_scroll(page, PHONE["width"])
    page.get_by_label("Passkey name").press("Escape")
    item.get_by_role("button", name="Delete").click()
    assert_no_horizontal_scroll(page, PHONE["width"])
    screenshot(page, "passkeys-360px.png")
    page.get_by_role("button", name="Keep it").click()

    by_id(page, "logout").click()
    expect_login_screen(page)
    assert_no_horizontal_scroll(page, PHONE["width"])
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_dashboard(page, username)
    assert requests_made(page) == ["modal"]
    assert len(authenticator.credentials()) == 1


def test_on_an_ip_address_the_page_says_where_passkeys_work(site: Site) -> None:
    page = site.new_page()
    page.add_init_script(RECORD_REQUESTS)
    Authenticator.attach(page)
    page.goto(f"{site.runner.url}/")  # http://127.0.0.1:<port>/: not a relying party id
    expect_login_screen(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(by_id(page, "passkey-login-error")).to_have_text(
        "Passkeys do not work at this address: open this page at its usual address "
        "(a name such as localhost, not an IP address)."
    )
    assert "modal" in requests_made(page)
    log_in(page, unique("nobody"))  # the rest of the page works on either address
    expect(by_id(page, "login-error")).to_have_text("The username or password is incorrect.")
