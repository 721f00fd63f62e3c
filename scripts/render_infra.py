"""Render ``infra/template.json``: ``infra/base.json`` plus the gateway answers.

``chalice package --merge-template infra/template.json`` merges the result into the
template Chalice generates. The ``AWS::ApiGateway::GatewayResponse`` resources come
from ``chalicelib.gateway.answer`` for every type in ``GATEWAY_ANSWERS`` (the table the
local adapter also uses), so AWS, ``chalice local`` and the tests answer alike; a test
fails when the committed file differs from a fresh render.

    .venv/bin/python -m scripts.render_infra            # write infra/template.json
    .venv/bin/python -m scripts.render_infra --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib import gateway

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "infra" / "base.json"
TEMPLATE = ROOT / "infra" / "template.json"
#: Chalice's logical id for the REST API in the packaged template.
REST_API = "RestAPI"
#: Stands in for the request id, which API Gateway fills from ``$context.requestId``.
_REQUEST_ID = "\x00request-id\x00"


def _logical_id(response_type: str) -> str:
    return "GatewayResponse" + "".join(w.capitalize() for w in response_type.split("_"))


def _static(value: str) -> str:
    """A static value in a gateway response parameter is written in single quotes."""
    return f"'{value}'"


def gateway_response(response_type: str) -> dict[str, Any]:
    """The ``AWS::ApiGateway::GatewayResponse`` for one row of ``GATEWAY_ANSWERS``."""
    answer = gateway.answer(response_type, _REQUEST_ID)
    body = answer["body"]
    # The template is Velocity: a literal "$" or "#" would be read as a reference or a
    # directive. The problem documents hold neither; refuse to render one that does.
    if "$" in body or "#" in body:
        raise ValueError(f"{response_type}: the body is not a plain Velocity template")
    parameters = {
        f"gatewayresponse.header.{name}": (
            "context.requestId" if value == _REQUEST_ID else _static(value)
        )
        for name, value in answer["headers"].items()
    }
    return {
        "Type": "AWS::ApiGateway::GatewayResponse",
        "Properties": {
            "RestApiId": {"Ref": REST_API},
            "ResponseType": response_type,
            "StatusCode": str(answer["statusCode"]),
            "ResponseParameters": parameters,
            "ResponseTemplates": {"application/json": body},
        },
    }


def render() -> str:
    """The text of ``infra/template.json``."""
    template: dict[str, Any] = json.loads(BASE.read_text(encoding="utf-8"))
    resources: dict[str, Any] = template["Resources"]
    for response_type in gateway.GATEWAY_ANSWERS:
        logical_id = _logical_id(response_type)
        if logical_id in resources:
            raise ValueError(f"{logical_id} is already in {BASE.name}")
        resources[logical_id] = gateway_response(response_type)
    return json.dumps(template, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TEMPLATE.read_text(encoding="utf-8") if TEMPLATE.exists() else ""
        if current != text:
            sys.stderr.write(f"{TEMPLATE} is stale: run python -m scripts.render_infra\n")
            return 1
        return 0
    TEMPLATE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
