"""The one error hierarchy: every failure a client may see, with its status and code.

Services raise only these. ``http.render_error`` is the one place that turns them into
RFC 9457 problem documents. They subclass ``ChaliceUnhandledError`` for one reason:
it is the only exception type Chalice lets through to ``@app.middleware('http')``;
any other exception is swallowed into Chalice's own ``{Code, Message}`` 500 body.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalice.app import ChaliceUnhandledError


@dataclass(frozen=True)
class FieldError:
    """One reason one field was refused: ``{"field", "code", "message"}`` in the problem."""

    field: str
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class GatehouseError(ChaliceUnhandledError):
    """Base of every client-visible failure; subclasses set status, code and title."""

    status = 500
    code = "internal_error"
    title = "Internal Server Error"
    default_detail = "The server could not complete the request."

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: tuple[FieldError, ...] = (),
        retry_after: int | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.errors = errors
        self.retry_after = retry_after
        super().__init__(self.detail)


class ValidationError(GatehouseError):
    """The body or a parameter is malformed, missing, wrongly typed or too large."""

    status, code, title = 400, "validation_error", "Invalid request"
    default_detail = "The request is not valid."

    @classmethod
    def of_field(cls, field: str, code: str, message: str) -> ValidationError:
        """One field refused for one reason (the common case)."""
        return cls("The request has invalid fields.", errors=(FieldError(field, code, message),))


class WeakPassword(GatehouseError):
    """The password fails the policy; ``errors`` says which rule."""

    status, code, title = 400, "weak_password", "Password too weak"
    default_detail = "The password does not meet the password policy."


class UsernameTaken(GatehouseError):
    status, code, title = 409, "username_taken", "Username taken"
    default_detail = "That username is already registered."


class EmailTaken(GatehouseError):
    status, code, title = 409, "email_taken", "Email taken"
    default_detail = "That email address is already registered."


class InvalidCredentials(GatehouseError):
    """Unknown user, wrong password or disabled account: one answer, so none can be told apart."""

    status, code, title = 401, "invalid_credentials", "Invalid credentials"
    default_detail = "The username or password is incorrect."


class MfaRequired(GatehouseError):
    """The password was right, MFA is on, and no code came with it."""

    status, code, title = 401, "mfa_required", "MFA code required"
    default_detail = "This account needs a code from its authenticator app (totp_code)."


class MfaAlreadyEnabled(GatehouseError):
    status, code, title = 409, "mfa_already_enabled", "MFA already enabled"
    default_detail = "Two-factor authentication is already on; disable it first."


class MfaNotPending(GatehouseError):
    status, code, title = 409, "mfa_not_pending", "No MFA enrolment pending"
    default_detail = "Start an enrolment with POST /me/mfa/totp first."


class InvalidToken(GatehouseError):
    """Missing, malformed, expired, revoked or foreign token (RFC 6750 ``invalid_token``)."""

    status, code, title = 401, "invalid_token", "Invalid token"
    default_detail = "The access token is missing, invalid or expired."


class NoToken(InvalidToken):
    """No access token at all: still ``invalid_token``, but RFC 6750 3.1 asks that the
    challenge then carry no error code (``WWW-Authenticate: Bearer``)."""

    default_detail = "An access token is required."


class LoginRequired(GatehouseError):
    """An OAuth request wants a fresher sign-in than the caller's (``prompt=login`` or
    ``max_age``): sign in again, then decide."""

    status, code, title = 401, "login_required", "Sign in again"
    default_detail = "This app asks you to sign in again before you allow it."


class NotFound(GatehouseError):
    """An unknown route, or an object the caller may not see (the two are indistinguishable)."""

    status, code, title = 404, "not_found", "Not found"
    default_detail = "The requested resource does not exist."


class MethodNotAllowed(GatehouseError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"
    default_detail = "The method is not allowed on this resource."

    def __init__(self, detail: str | None = None, *, allow: str = "") -> None:
        super().__init__(detail)
        self.allow = allow


class OriginNotAllowed(GatehouseError):
    """A CORS preflight from an origin (or for a method) this stage does not allow."""

    status, code, title = 403, "origin_not_allowed", "Origin not allowed"
    default_detail = "This origin may not call the API from a browser."


class TodoLimitReached(GatehouseError):
    status, code, title = 409, "todo_limit_reached", "Too many to-dos"
    default_detail = "The to-do list is full; delete some first."


class PasskeyLimitReached(GatehouseError):
    status, code, title = 409, "passkey_limit_reached", "Too many passkeys"
    default_detail = "This account holds as many passkeys as it may; remove one first."


class PasskeyExists(GatehouseError):
    status, code, title = 409, "passkey_exists", "Passkey already registered"
    default_detail = "This passkey is already registered to the account."


class TooManyAttempts(GatehouseError):
    status, code, title = 429, "too_many_attempts", "Too many attempts"
    default_detail = "Too many attempts; wait before trying again."


class ServiceUnavailable(GatehouseError):
    """A dependency (the table, the key source) is down; the client may retry later."""

    status, code, title = 503, "service_unavailable", "Service unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, retry_after=retry_after)
