"""The sample relying party (examples/sign-in-with-gatehouse) end to end in Chromium.

It is registered and started as its README says (``scripts.admin clients create``,
then ``relying_party.py`` with ``CLIENT_ID`` and ``CLIENT_SECRET``), on 127.0.0.1 while
Gatehouse's page is on localhost: two sites, as an app and its identity provider are.
The browser opens the app, signs in through Gatehouse's page, lands back greeted by
name, then signs out through the end_session_endpoint and lands back signed out.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from scripts.dynamodb_local import free_port
from tests.conftest import PROJECT_DIR
from tests.e2e.browser import Site, by_id, log_in, unique
from tests.e2e.relyingparty import register_client
from tests.e2e.runner import Runner

pytestmark = pytest.mark.e2e

SAMPLE = PROJECT_DIR / "examples" / "sign-in-with-gatehouse" / "relying_party.py"
STARTUP_SECONDS = 30


@dataclass
class SampleApp:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:]


def wait_until_listening(app: SampleApp, port: int) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            pytest.fail(f"the sample app exited with {app.process.returncode}:\n{app.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the sample app did not listen in {STARTUP_SECONDS}s:\n{app.output()}")


@pytest.fixture(scope="module")
def sample_app(
    shared_runner: Runner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SampleApp]:
    """The sample, registered with the admin command line and started as the README says."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = register_client(
        shared_runner, "Sample app", (f"{url}/callback",), (f"{url}/signed-out",)
    )
    assert client.secret is not None
    env = {
        **shared_runner.environment,
        "GATEHOUSE_ISSUER": f"http://localhost:{shared_runner.port}",
        "CLIENT_ID": client.client_id,
        "CLIENT_SECRET": client.secret,
        "APP_URL": url,
    }
    log = tmp_path_factory.mktemp("sample") / "sample.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - the sample, no shell
            [sys.executable, str(SAMPLE)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    app = SampleApp(url, process, log)
    try:
        wait_until_listening(app, port)
        yield app
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_sample_app_signs_in_with_gatehouse_and_signs_out_again(
    site: Site, sample_app: SampleApp
) -> None:
    username = unique("sample")
    site.api().register(username)
    page = site.new_page()
    page.goto(sample_app.url)
    expect(page.get_by_text("You are not signed in.")).to_be_visible()

    page.get_by_role("link", name="Sign in with Gatehouse").click()
    page.wait_for_url(site.url)  # Gatehouse's page, the request taken from its address
    log_in(page, username)
    expect(by_id(page, "consent-app")).to_have_text("Sample app")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(f"{sample_app.url}/")
    expect(page.locator("#greeting")).to_have_text(f"Hello, {username}")

    page.get_by_role("link", name="Sign out").click()
    page.wait_for_url(lambda url: url.startswith(f"{sample_app.url}/signed-out?state="))
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    expect(page.get_by_text("and of its Gatehouse session")).to_be_visible()

    page.goto(sample_app.url)
    expect(page.get_by_text("You are not signed in.")).to_be_visible()


def test_a_denied_sign_in_says_so_on_the_sample_app(site: Site, sample_app: SampleApp) -> None:
    username = unique("sample")
    site.api().register(username)
    page = site.new_page()
    page.goto(sample_app.url)
    page.get_by_role("link", name="Sign in with Gatehouse").click()
    log_in(page, username)
    page.get_by_role("button", name="Deny").click()

    page.wait_for_url(lambda url: url.startswith(f"{sample_app.url}/callback?"))
    expect(page.get_by_role("heading", name="Sign-in failed")).to_be_visible()
    expect(page.get_by_text("(access_denied)")).to_be_visible()
