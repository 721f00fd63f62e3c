"""What each route accepts as its JSON body: one spec per route.

app.py checks every body against its entry here (``http.json_object``), and the
OpenAPI document is generated from the same entries (openapi.py), so the two cannot
disagree. String limits are generous parse-time caps; the rules for each value
(username, password policy, to-do text) are the services' own.
"""

from __future__ import annotations

from chalicelib.crypto.credentials import ASSERTION, REGISTRATION
from chalicelib.edge.http import Body, Field

REGISTER_FIELDS = (
    Field("username", max_length=256),
    Field("password", max_length=1024),
    Field("email", required=False, max_length=320),
    Field("display_name", required=False, max_length=256),
)
LOGIN_FIELDS = (
    Field("username", max_length=320),
    Field("password", max_length=1024),
    Field("totp_code", required=False, max_length=64),
    Field("refresh_cookie", kind=bool, required=False),
    #: A passkey assertion in place of ``totp_code`` (see passkeys.py).
    Field("passkey", kind=dict, required=False, shape=ASSERTION),
)
#: ``refresh_token`` may instead come in the HttpOnly cookie (the web page's way).
REFRESH_FIELDS = (
    Field("refresh_token", required=False, max_length=1024),
    Field("refresh_cookie", kind=bool, required=False),
)
#: Changing ``email`` needs the step-up: ``password``, and ``totp_code`` with MFA on.
PROFILE_FIELDS = (
    Field("email", required=False, max_length=320),
    Field("display_name", required=False, max_length=256),
    Field("password", required=False, max_length=1024),
    Field("totp_code", required=False, max_length=64),
)
PASSWORD_FIELDS = (Field("password", max_length=1024),)
CHANGE_PASSWORD_FIELDS = (
    Field("current_password", max_length=1024),
    Field("new_password", max_length=1024),
)
FORGOT_FIELDS = (Field("email", max_length=320),)
RESET_FIELDS = (Field("token", max_length=256), Field("new_password", max_length=1024))
TOKEN_FIELDS = (Field("token", max_length=256),)
CODE_FIELDS = (Field("code", max_length=64),)
TODO_FIELDS = (Field("text", max_length=4096), Field("completed", kind=bool, required=False))
TODO_CHANGE_FIELDS = (
    Field("text", required=False, max_length=4096),
    Field("completed", kind=bool, required=False),
)
LOGOUT_FIELDS = (Field("refresh_token", required=False, max_length=1024),)
STEP_UP_FIELDS = (
    Field("password", max_length=1024),
    Field("totp_code", required=False, max_length=64),
)
NEW_PASSKEY_FIELDS = (
    Field("credential", kind=dict, shape=REGISTRATION),
    Field("name", required=False, max_length=256),
)
PASSKEY_NAME_FIELDS = (Field("name", max_length=256),)
PASSKEY_OPTIONS_FIELDS = (Field("username", required=False, max_length=320),)
PASSKEY_LOGIN_FIELDS = (
    Field("credential", kind=dict, shape=ASSERTION),
    Field("refresh_cookie", kind=bool, required=False),
)
DECISION_FIELDS = (Field("decision", max_length=16),)
#: The body each route reads, by (method, route).
BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/register"): Body(REGISTER_FIELDS),
    ("POST", "/login"): Body(LOGIN_FIELDS),
    ("POST", "/token/refresh"): Body(REFRESH_FIELDS, optional=True),
    ("POST", "/logout"): Body(LOGOUT_FIELDS, optional=True),
    ("PATCH", "/me"): Body(PROFILE_FIELDS),
    ("DELETE", "/me"): Body(PASSWORD_FIELDS),
    ("POST", "/me/password"): Body(CHANGE_PASSWORD_FIELDS),
    ("POST", "/password/forgot"): Body(FORGOT_FIELDS),
    ("POST", "/password/reset"): Body(RESET_FIELDS),
    ("POST", "/email/verify"): Body(TOKEN_FIELDS),
    ("POST", "/me/mfa/totp"): Body(PASSWORD_FIELDS),
    ("POST", "/me/mfa/totp/confirm"): Body(CODE_FIELDS),
    ("DELETE", "/me/mfa/totp"): Body(PASSWORD_FIELDS),
    ("POST", "/todos"): Body(TODO_FIELDS),
    ("PATCH", "/todos/{todo_id}"): Body(TODO_CHANGE_FIELDS),
    ("POST", "/me/passkeys/options"): Body(STEP_UP_FIELDS),
    ("POST", "/me/passkeys"): Body(NEW_PASSKEY_FIELDS),
    ("PATCH", "/me/passkeys/{passkey_id}"): Body(PASSKEY_NAME_FIELDS),
    ("POST", "/passkeys/options"): Body(PASSKEY_OPTIONS_FIELDS, optional=True),
    ("POST", "/passkeys/login"): Body(PASSKEY_LOGIN_FIELDS),
    ("POST", "/oauth2/requests/{request_id}"): Body(DECISION_FIELDS),
}
