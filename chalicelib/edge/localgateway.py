"""The one patch to Chalice's API Gateway imitation, shared by the runner and the tests.

``LocalGateway`` answers some requests itself, with API Gateway's default bodies, and
lets an exception from the authorizer escape (API Gateway would answer 500). This
subclass maps each of those to the contract's answer from ``gateway.GATEWAY_ANSWERS``
and gives every event a ``requestId``, as API Gateway does. ``GatewayClient`` is the
test client built on it. Imported only off Lambda (the runner, tests, the benchmark).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chalice.local import (
    ForbiddenError,
    InvalidAuthorizerError,
    LambdaContext,
    LocalGateway,
    LocalGatewayException,
    NotAuthorizedError,
)
from chalice.test import Client, TestHTTPClient

from chalicelib.edge import gateway

_log = logging.getLogger("gatehouse")


def _response_type(error: LocalGatewayException) -> str:
    if isinstance(error, NotAuthorizedError):
        return "UNAUTHORIZED"
    if isinstance(error, InvalidAuthorizerError):
        return "AUTHORIZER_CONFIGURATION_ERROR"
    if isinstance(error, ForbiddenError):
        if error.headers.get("x-amzn-ErrorType") == "AccessDeniedException":
            return "ACCESS_DENIED"
        return "MISSING_AUTHENTICATION_TOKEN"
    return "AUTHORIZER_CONFIGURATION_ERROR"


class AdaptedGateway(LocalGateway):
    """``LocalGateway`` that answers as the deployed API Gateway stage does."""

    _local = threading.local()

    def _generate_lambda_context(self) -> LambdaContext:
        context = super()._generate_lambda_context()
        self._local.request_id = context.aws_request_id
        return context

    def _generate_lambda_event(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        try:
            event = super()._generate_lambda_event(method, path, headers, body)
        except ValueError:
            # No route matches. Answer here: LocalGateway's own answer echoes the
            # Authorization header as ASCII and crashes on any other byte.
            raise ForbiddenError({}, b"") from None
        event["requestContext"]["requestId"] = self._local.request_id
        return event

    def handle_request(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        try:
            return super().handle_request(method, path, headers, body)
        except LocalGatewayException as error:
            return gateway.answer(_response_type(error), self._local.request_id)
        except Exception:  # noqa: BLE001 - API Gateway turns any authorizer error into one answer
            # Only the authorizer can raise here (Chalice catches view errors itself).
            _log.exception("authorizer failed")
            return gateway.answer("AUTHORIZER_FAILURE", self._local.request_id)


class GatewayClient(Client):
    """``chalice.test.Client`` answering through ``AdaptedGateway``: what the tests and
    the benchmark drive, so they see exactly what ``make run`` and API Gateway answer."""

    @property
    def http(self) -> TestHTTPClient:
        if self._http_client is None:
            client = TestHTTPClient(self._app, self._chalice_config)
            client._local_gateway = AdaptedGateway(self._app, self._chalice_config)
            self._http_client = client
        return self._http_client
