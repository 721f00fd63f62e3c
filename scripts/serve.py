"""``make run``: DynamoDB Local plus ``chalice local --stage local``, tuned and adapted.

Stock ``chalice local`` keeps Nagle's algorithm on and a listen backlog of 5, so a
keep-alive client stalls about 40 ms per request; here the handler sets
``disable_nagle_algorithm`` and the server a deep backlog. There is no autoreload (its
watchdog reloader restart-loops); restart to pick up code changes. API Gateway's own
answers come from ``chalicelib.edge.localgateway.AdaptedGateway``, as in the tests.

Environment: ``PORT`` (8000), ``DDB_PORT`` (8001), ``DDB_ENDPOINT`` (use a running
DynamoDB instead of starting one). Ctrl-C or SIGTERM stops the server and DynamoDB Local.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from chalice.cli.factory import CLIFactory  # noqa: E402
from chalice.config import Config  # noqa: E402
from chalice.local import (  # noqa: E402
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    ThreadedHTTPServer,
)

from chalicelib.edge.localgateway import AdaptedGateway  # noqa: E402
from chalicelib.platform.config import Settings  # noqa: E402
from chalicelib.store import table  # noqa: E402
from scripts.dynamodb_local import DynamoDBLocal, is_listening  # noqa: E402


class GatehouseRequestHandler(ChaliceRequestHandler):
    """Chalice's handler with Nagle off, one shared, adapted gateway, and HEAD done right."""

    disable_nagle_algorithm = True

    def __init__(
        self,
        request: Any,
        client_address: Any,
        server: Any,
        *,
        app_object: Any,
        config: Config,
        gateway: AdaptedGateway,
    ) -> None:
        self.local_gateway = gateway
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def _send_http_response_with_body(
        self, code: int, headers: dict[str, Any], body: str | bytes
    ) -> None:
        """Send no content in answer to HEAD (RFC 9110, 9.3.2).

        Chalice's handler writes the body anyway; on a keep-alive connection the client
        then reads those bytes as the start of the next response.
        """
        if self.command != "HEAD":
            super()._send_http_response_with_body(code, headers, body)
            return
        content = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)


class GatehouseHTTPServer(ThreadedHTTPServer):
    request_queue_size = 1024


def build_server(project_dir: Path, host: str, port: int, stage: str = "local") -> LocalDevServer:
    """A local server for ``stage``: the app loaded as ``chalice local`` loads it."""
    factory = CLIFactory(str(project_dir), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    # As chalice.local.create_local_server does: a thread-local current_request.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    handler = functools.partial(GatehouseRequestHandler, gateway=AdaptedGateway(app, config))
    return LocalDevServer(
        app, config, host, port, handler_cls=handler, server_cls=GatehouseHTTPServer
    )


def _start_dynamodb() -> DynamoDBLocal | None:
    """Start DynamoDB Local with data under .local/ unless one is given or already up."""
    if os.environ.get("DDB_ENDPOINT"):
        return None
    port = int(os.environ.setdefault("DDB_PORT", "8001"))
    if is_listening(port):
        print(f"Using the DynamoDB Local already on 127.0.0.1:{port}", flush=True)
        return None
    ddb = DynamoDBLocal(port, data_dir=PROJECT_DIR / ".local" / "dynamodb")
    ddb.start()
    print(f"DynamoDB Local on 127.0.0.1:{port} (data in .local/dynamodb)", flush=True)
    return ddb


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    # Passkeys need the page's own origin; browsers refuse 127.0.0.1 as a relying party.
    os.environ.setdefault("WEBAUTHN_ORIGINS", f"http://localhost:{port}")
    ddb = _start_dynamodb()
    try:
        server = build_server(PROJECT_DIR, host, port)  # also exports the stage's variables
        settings = Settings.from_env()
        if table.create_table(table.connect(settings), settings.table_name):
            print(f"Created table {settings.table_name}", flush=True)

        def stop(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        server.serve_forever()
        server.server.server_close()
    finally:
        if ddb is not None:
            ddb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
