"""Start the real local runner (``scripts/serve.py``) on a free port against the test
session's DynamoDB Local: shared by the HTTP and the browser end-to-end tests."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.dynamodb_local import DynamoDBLocal, free_port
from tests.conftest import PROJECT_DIR, TEST_BCRYPT_COST

STARTUP_SECONDS = 60


@dataclass
class Runner:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    outbox: Path
    #: The runner's environment: what ``scripts.admin`` needs to reach the same table.
    environment: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:]


def wait_until_healthy(runner: Runner) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if runner.process.poll() is not None:
            pytest.fail(f"the runner exited with {runner.process.returncode}:\n{runner.output()}")
        probe = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=2)
        try:
            probe.request("GET", "/health")
            if probe.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            probe.close()
        time.sleep(0.1)
    pytest.fail(f"the runner did not answer /health in {STARTUP_SECONDS}s:\n{runner.output()}")


@contextmanager
def serve(dynamodb: DynamoDBLocal, directory: Path, **settings: str) -> Iterator[Runner]:
    """``scripts/serve.py`` on a free port (``PORT`` when ``settings`` name it: for a
    setting that must contain the port, like ``ISSUER``), with its key file, outbox and
    log in ``directory`` and ``settings`` in its environment; killed on exit if it is
    still running."""
    port = int(settings["PORT"]) if "PORT" in settings else free_port()
    outbox = directory / "outbox"
    env = {
        **os.environ,
        "PORT": str(port),
        "DDB_ENDPOINT": dynamodb.endpoint,
        "BCRYPT_COST": TEST_BCRYPT_COST,
        "KEY_FILE": str(directory / "signing-keys.json"),
        "OUTBOX_DIR": str(outbox),
        # Passkeys: browsers refuse an IP address as the relying party, so the page is
        # opened on localhost (the default WEBAUTHN_RP_ID) at this runner's port.
        "WEBAUTHN_ORIGINS": f"http://localhost:{port}",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    log = directory / "runner.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own script, no shell
            [sys.executable, str(PROJECT_DIR / "scripts" / "serve.py")],
            cwd=PROJECT_DIR,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    started = Runner(process, port, log, outbox, env)
    try:
        wait_until_healthy(started)
        yield started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
