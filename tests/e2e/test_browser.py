"""The web page in a real browser: Debian's Chromium, driven by Playwright, against the
real local runner (``scripts/serve.py``) on the session's DynamoDB Local.

Every test opens http://localhost:<port>/ as a person would and fails on any Content
Security Policy violation or script error the page raises. A missing browser fails
the tests (install it with ``apt-get install chromium``); it never skips them.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Request, Route, expect

from tests.e2e.browser import (
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


def read_link(outbox: Path, to: str, kind: str) -> str:
    """The token of the newest ``#reset=`` or ``#verify=`` link mailed to ``to``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml"), reverse=True):
            message = email.message_from_string(
                path.read_text("utf-8"), policy=email.policy.default
            )
            if message["To"] == to:
                found = re.search(rf"#{kind}=(\S+)", path.read_text("utf-8"))
                if found:
                    return found.group(1)
        time.sleep(0.1)
    pytest.fail(f"no {kind} link was mailed to {to} in {outbox}")


# ------------------------------------------------------------------ what a person does


def add_todo(page: Page, text: str) -> None:
    page.get_by_label("New to-do").fill(text)
    by_id(page, "todo-add").click()
    expect(todo(page, text)).to_be_visible()
    expect(page.get_by_label("New to-do")).to_have_value("")


def todo(page: Page, text: str) -> Locator:
    return by_id(page, "todo-item").filter(has=page.get_by_text(text, exact=True))


def todo_texts(page: Page) -> Locator:
    return by_id(page, "todo-text")


def completion(page: Page) -> list[str]:
    states = by_id(page, "todo-item").evaluate_all("items => items.map(i => i.dataset.completed)")
    return [str(state) for state in states]


def refresh_cookies(context: BrowserContext) -> list[dict[str, Any]]:
    return [dict(c) for c in context.cookies() if c.get("name") == "gh_refresh"]


# ------------------------------------------------------------------ scenarios


def test_register_log_in_add_complete_reload_log_out_and_log_in_again(site: Site) -> None:
    page = site.open()
    expect_login_screen(page)
    username = unique()
    texts = ["Buy oat milk", "Renew the passport", "Call the plumber about the boiler"]

    address = f"{username}@example.com"
    register(page, username, email=address, display_name="Ada Lovelace")
    expect(by_id(page, "flash")).to_contain_text("Your account has been created")
    expect(page.get_by_label("Username or email")).to_have_value(username)
    log_in(page, username)
    expect_dashboard(page, username)
    expect(by_id(page, "dashboard-title")).to_have_text("Hello, Ada Lovelace")
    expect(by_id(page, "profile-email")).to_have_text(address)
    expect(by_id(page, "profile-email-status")).to_have_text("Not verified")
    expect(by_id(page, "todo-empty")).to_be_visible()

    for text in texts:
        add_todo(page, text)
    expect(todo_texts(page)).to_have_text(list(reversed(texts)))
    toggle = todo(page, texts[1]).get_by_test_id("todo-toggle")
    toggle.check()
    expect(todo(page, texts[1])).to_have_attribute("data-completed", "true")
    expect(toggle).to_be_enabled()  # the PATCH has been answered
    expect(by_id(page, "session-item")).to_have_count(1)
    expect(by_id(page, "session-current")).to_have_text("This device")
    assert_every_input_is_labelled(page)
    screenshot(page, "dashboard.png")
    page.get_by_role("button", name="Resend verification email").click()
    expect(by_id(page, "flash")).to_have_text(
        f"A new verification link is on its way to {address}."
    )

    # The access token is in memory only; the refresh token in an HttpOnly cookie.
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""
    (cookie,) = refresh_cookies(page.context)
    assert cookie["httpOnly"] is True
    assert cookie["path"] == "/token"
    assert cookie["sameSite"] == "Strict"

    page.reload()
    expect_dashboard(page, username)
    expect(todo_texts(page)).to_have_text(list(reversed(texts)))
    assert completion(page) == ["false", "true", "false"]

    by_id(page, "logout").click()
    expect_login_screen(page)
    expect(by_id(page, "flash")).to_have_text("You have logged out.")
    expect(by_id(page, "todo-item")).to_have_count(0)
    assert refresh_cookies(page.context) == []

    page.reload()  # no session left to resume
    expect_login_screen(page)
    log_in(page, username)
    expect_dashboard(page, username)
    expect(todo_texts(page)).to_have_text(list(reversed(texts)))
    assert completion(page) == ["false", "true", "false"]


def test_a_weak_password_shows_the_rule_it_failed(site: Site) -> None:
    page = site.open()
    username = unique()
    by_id(page, "go-register").click()
    rules = by_id(page, "password-rules")
    expect(rules).to_contain_text("at least 8 characters")
    expect(rules).to_contain_text("not be a common password")
    expect(rules).to_contain_text("not contain your username or email")

    register_form_password = view(page, "register").get_by_label("Password", exact=True)
    page.get_by_label("Username", exact=True).fill(username)
    register_form_password.fill("password123")
    page.get_by_role("button", name="Create account").click()
    error = by_id(page, "register-password-error")
    expect(error).to_have_text("This password is too common; choose another.")
    expect(error).to_have_attribute("role", "alert")
    expect(register_form_password).to_have_attribute("aria-invalid", "true")
    expect(register_form_password).to_be_focused()

    register_form_password.fill(f"my {username} pw")
    page.get_by_role("button", name="Create account").click()
    expect(error).to_have_text("Do not use your username in it.")

    register_form_password.fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(error).to_contain_text("at least 8 characters")

    register_form_password.fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(by_id(page, "flash")).to_contain_text("Your account has been created")

    # The same username again is refused next to its field.
    register(page, username.upper())
    expect(by_id(page, "register-username-error")).to_have_text(
        "That username is taken; choose another."
    )


def test_two_users_in_two_browsers_never_see_each_others_items(site: Site) -> None:
    api = site.api()
    alice, bob = unique("alice"), unique("bob")
    api.register(alice, display_name="<b>Alice</b>")
    api.register(bob)
    alice_page, bob_page = site.open(), site.open()
    log_in(alice_page, alice)
    log_in(bob_page, bob)
    expect_dashboard(alice_page, alice)
    expect_dashboard(bob_page, bob)

    add_todo(alice_page, "Alice's secret plan")
    add_todo(bob_page, "Bob's shopping list")
    add_todo(alice_page, '<img src=x onerror="window.pwned=1">')

    for page in (alice_page, bob_page):
        page.reload()
    expect_dashboard(alice_page, alice)
    expect_dashboard(bob_page, bob)
    expect(todo_texts(alice_page)).to_have_text(
        ['<img src=x onerror="window.pwned=1">', "Alice's secret plan"]
    )
    expect(todo_texts(bob_page)).to_have_text(["Bob's shopping list"])
    # User text is shown as text, never parsed as markup.
    expect(by_id(alice_page, "dashboard-title")).to_have_text("Hello, <b>Alice</b>")
    assert alice_page.locator("#view-dashboard img, #view-dashboard b").count() == 0
    assert alice_page.evaluate("() => window.pwned === undefined")
    (alice_cookie,), (bob_cookie,) = (refresh_cookies(p.context) for p in (alice_page, bob_page))
    assert alice_cookie["value"] != bob_cookie["value"]


def test_an_mfa_user_is_asked_for_the_authenticator_code(site: Site) -> None:
    api = site.api()
    username = unique("mfa")
    api.register(username)
    token = api.login(username)
    secret = api.ok("POST", "/me/mfa/totp", {"password": PASSWORD}, token=token)["secret"]
    totp = pyotp.TOTP(secret)
    api.ok("POST", "/me/mfa/totp/confirm", {"code": totp.now()}, token=token)

    page = site.open()
    code_field = view(page, "login").get_by_label("Authentication code")
    expect(code_field).to_be_hidden()
    log_in(page, username)
    expect(code_field).to_be_visible()
    expect(code_field).to_be_focused()
    expect(by_id(page, "login-error")).to_contain_text("Two-factor authentication is on")

    valid = {totp.at(time.time() + skew) for skew in (-30, 0, 30, 60)}
    wrong = next(c for c in (f"{n:06d}" for n in range(100_000, 999_999)) if c not in valid)
    code_field.fill(wrong)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(by_id(page, "login-error")).to_have_text("The code, username or password is incorrect.")
    expect(by_id(page, "profile-username")).to_be_hidden()

    # The enrolment used this step's code, which is never accepted twice: use the next.
    code_field.fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect_dashboard(page, username)


def test_the_dashboard_fits_a_360_px_phone_screen(site: Site) -> None:
    api = site.api()
    username = unique("phone")
    api.register(
        username,
        display_name="W" * 100,
        email=f"{'a' * 60}.{username}@an-unusually-long-domain-name.example",
    )
    page = site.open(viewport=PHONE)
    assert_no_horizontal_scroll(page, PHONE["width"])
    log_in(page, username)
    expect_dashboard(page, username)
    for text in ("x" * 400, "Water the plants", "https://example.com/" + "segment/" * 30):
        add_todo(page, text)
    todo(page, "Water the plants").get_by_test_id("todo-toggle").check()
    expect(todo(page, "Water the plants")).to_have_attribute("data-completed", "true")
    assert_no_horizontal_scroll(page, PHONE["width"])

    todo(page, "Water the plants").get_by_test_id("todo-edit").click()
    expect(by_id(page, "todo-edit-input")).to_be_focused()
    assert_no_horizontal_scroll(page, PHONE["width"])
    screenshot(page, "dashboard-360px.png")

    by_id(page, "todo-cancel").click()
    by_id(page, "logout").click()
    expect_login_screen(page)
    by_id(page, "go-register").click()
    assert_no_horizontal_scroll(page, PHONE["width"])


def test_to_dos_are_edited_deleted_and_paged(site: Site) -> None:
    api = site.api()
    username = unique("pager")
    api.register(username)
    token = api.login(username)
    for n in range(1, 23):
        api.ok("POST", "/todos", {"text": f"Task {n:02d}"}, token=token)

    page = site.open()
    log_in(page, username)
    expect_dashboard(page, username)
    expect(todo_texts(page)).to_have_count(20)
    expect(todo_texts(page).first).to_have_text("Task 22")
    more = page.get_by_role("button", name="Load more")
    more.click()
    expect(todo_texts(page)).to_have_count(22)
    expect(todo_texts(page).last).to_have_text("Task 01")
    expect(more).to_be_hidden()

    todo(page, "Task 05").get_by_test_id("todo-edit").click()
    editor = page.get_by_label("Edit to-do")
    expect(editor).to_be_focused()
    editor.fill("Task 05, rewritten")
    editor.press("Enter")
    expect(todo(page, "Task 05, rewritten")).to_be_visible()
    expect(todo(page, "Task 05, rewritten").get_by_test_id("todo-edit")).to_be_focused()

    todo(page, "Task 06").get_by_test_id("todo-edit").click()
    page.get_by_label("Edit to-do").fill("never saved")
    page.get_by_label("Edit to-do").press("Escape")
    expect(todo(page, "Task 06")).to_be_visible()

    todo(page, "Task 10").get_by_role("button", name="Delete").click()
    expect(todo(page, "Task 10")).to_have_count(0)
    expect(todo_texts(page)).to_have_count(21)

    page.reload()
    expect_dashboard(page, username)
    more.click()
    expect(todo_texts(page)).to_have_count(21)
    expect(todo(page, "Task 05, rewritten")).to_be_visible()
    expect(todo(page, "Task 10")).to_have_count(0)


def test_profile_and_sessions_on_the_dashboard(site: Site) -> None:
    api = site.api()
    username = unique("prof")
    api.register(username)
    other_device = api.login(username)

    page = site.open()
    log_in(page, username)
    expect_dashboard(page, username)
    expect(by_id(page, "profile-email")).to_have_text("(none)")
    expect(by_id(page, "resend-verification")).to_be_hidden()

    page.get_by_label("Display name", exact=True).fill("Grace  ")
    page.get_by_role("button", name="Save").click()
    expect(by_id(page, "profile-display-name")).to_have_text("Grace")
    expect(by_id(page, "dashboard-title")).to_have_text("Hello, Grace")

    sessions = by_id(page, "session-item")
    expect(sessions).to_have_count(2)
    expect(sessions.filter(has=by_id(page, "session-current"))).to_have_count(1)
    other = sessions.filter(has_not=by_id(page, "session-current"))
    other.get_by_role("button", name="Sign out this device").click()
    expect(sessions).to_have_count(1)
    assert api.call("GET", "/me", token=other_device)[0] == 401

    # Change password: a wrong current password, then a weak new one, then a good one.
    current = page.get_by_label("Current password")
    new = view(page, "dashboard").get_by_label("New password")
    current.fill("not my password")
    new.fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-current-error")).to_have_text(
        "Your current password is incorrect."
    )
    current.fill(PASSWORD)
    new.fill("password123")
    page.get_by_role("button", name="Change password").click()
    expect(by_id(page, "password-new-error")).to_have_text(
        "This password is too common; choose another."
    )
    new.fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(by_id(page, "flash")).to_contain_text("Your password has been changed")

    by_id(page, "logout-all").click()
    expect_login_screen(page)
    expect(by_id(page, "flash")).to_have_text("You have been signed out on every device.")
    log_in(page, username, "a brand new passphrase")
    expect_dashboard(page, username)


def test_a_session_ended_elsewhere_returns_the_page_to_log_in(site: Site) -> None:
    api = site.api()
    username = unique("ended")
    api.register(username)
    page = site.open()
    log_in(page, username)
    expect_dashboard(page, username)

    api.ok("POST", "/logout/all", token=api.login(username))
    page.get_by_label("New to-do").fill("written after the session ended")
    by_id(page, "todo-add").click()
    expect_login_screen(page)
    expect(by_id(page, "alert")).to_have_text("Your session has ended. Please log in again.")


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(site: Site) -> None:
    api = site.api()
    username = unique("retry")
    api.register(username)
    page = site.open()
    log_in(page, username)
    expect_dashboard(page, username)

    refreshes: list[str] = []

    def count_refreshes(request: Request) -> None:
        if request.url.endswith("/token/refresh"):
            refreshes.append(request.method)

    page.on("request", count_refreshes)
    answered: list[int] = []

    def expire_once(route: Route) -> None:
        # The first POST /todos is answered as if the access token had expired.
        if route.request.method == "POST" and not answered:
            answered.append(401)
            route.fulfill(
                status=401,
                content_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                body=json.dumps({"status": 401, "code": "invalid_token", "detail": "expired"}),
            )
        else:
            route.continue_()

    page.route(re.compile(r"/todos$"), expire_once)
    add_todo(page, "survives a token refresh")
    assert answered == [401]
    assert refreshes == ["POST"]

    page.reload()  # the cookie the refresh rotated still resumes the session
    expect_dashboard(page, username)
    expect(todo_texts(page)).to_have_text(["survives a token refresh"])


def test_email_links_verify_the_address_and_reset_the_password(site: Site) -> None:
    username = unique("mail")
    address = f"{username}@example.com"
    page = site.open()
    register(page, username, email=address)
    expect(by_id(page, "flash")).to_contain_text("verification link")

    page.goto(f"{site.url}#verify={read_link(site.runner.outbox, address, 'verify')}")
    expect(by_id(page, "verify-result")).to_have_text("Thank you: your email address is verified.")
    assert "#" not in page.url
    page.get_by_role("button", name="Continue").click()
    log_in(page, address)
    expect_dashboard(page, username)
    expect(by_id(page, "profile-email")).to_have_text(address)
    expect(by_id(page, "profile-email-status")).to_have_text("Verified")
    by_id(page, "logout").click()

    expect_login_screen(page)
    page.get_by_role("button", name="Forgot password?").click()
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_role("button", name="Send reset link").click()
    expect(by_id(page, "forgot-done")).to_contain_text("If that address belongs to an account")
    page.get_by_label("Email", exact=True).fill(f"nobody-{address}")
    page.get_by_role("button", name="Send reset link").click()
    expect(by_id(page, "forgot-done")).to_contain_text("If that address belongs to an account")

    token = read_link(site.runner.outbox, address, "reset")
    page.goto(f"{site.url}#reset={token}")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert "#" not in page.url
    view(page, "reset").get_by_label("New password").fill("password")
    page.get_by_role("button", name="Set new password").click()
    expect(by_id(page, "reset-password-error")).to_contain_text("too common")
    view(page, "reset").get_by_label("New password").fill("an entirely new secret")
    page.get_by_role("button", name="Set new password").click()
    expect(by_id(page, "flash")).to_contain_text("Your password has been changed")
    log_in(page, username, "an entirely new secret")
    expect_dashboard(page, username)

    page.goto(f"{site.url}#reset={token}")  # a spent link says so
    view(page, "reset").get_by_label("New password").fill("yet another new secret")
    page.get_by_role("button", name="Set new password").click()
    expect(by_id(page, "reset-error")).to_contain_text("has already been used")
