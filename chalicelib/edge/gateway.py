"""Answers API Gateway gives before app.py runs, and what the contract wants instead.

One table, rendered twice: as the API document's gateway responses (scripts/render_infra.py) in the
deployed template, and by ``chalicelib.edge.localgateway`` around Chalice's ``LocalGateway``
(the imitation that ``chalice local`` and ``chalice.test.Client`` use). So local, tests
and AWS answer alike.

| AWS response type              | when                                  | contract answer         |
|--------------------------------|---------------------------------------|-------------------------|
| MISSING_AUTHENTICATION_TOKEN   | unknown path (AWS: or method)         | 404 not_found           |
| UNAUTHORIZED                   | no Authorization header, guarded route | 401 invalid_token      |
| ACCESS_DENIED                  | the authorizer denied the token       | 401 invalid_token       |
| AUTHORIZER_FAILURE             | the authorizer raised (store, keys)   | 503 service_unavailable |
| AUTHORIZER_CONFIGURATION_ERROR | the authorizer returned nothing usable | 500 internal_error     |
"""

from __future__ import annotations

from typing import Any

from chalicelib.edge import http, middleware
from chalicelib.platform import errors

GATEWAY_ANSWERS: dict[str, type[errors.GatehouseError]] = {
    "MISSING_AUTHENTICATION_TOKEN": errors.NotFound,
    "UNAUTHORIZED": errors.InvalidToken,
    "ACCESS_DENIED": errors.InvalidToken,
    "AUTHORIZER_FAILURE": errors.ServiceUnavailable,
    "AUTHORIZER_CONFIGURATION_ERROR": errors.GatehouseError,
}


def answer(response_type: str, request_id: str) -> dict[str, Any]:
    """The proxy-integration response dict for a gateway answer, with our common headers."""
    error = GATEWAY_ANSWERS[response_type]()
    return middleware.secure(http.problem(error), request_id).to_dict()
