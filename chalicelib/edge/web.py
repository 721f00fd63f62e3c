"""The single-page web app's files, served by Chalice from ``chalicelib/edge/web/``.

Served from the API's own origin and stage path, so the page needs no CORS and finds
the API at its own base URL. Every file is text (HTML, CSS, JavaScript), so API Gateway
passes it through as is: none of these types is in the API's ``binary_types``. The page
gets a strict Content-Security-Policy (no inline script or style, nothing from another
origin) and may not be framed.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalicelib.platform import errors

WEB_DIR = Path(__file__).parent / "web"
#: The page's ES modules: index.html loads main.js, which imports the others by relative
#: path ("./api.js"), so each sits directly under web/ and is served as /assets/<name>.
MODULES = (
    "main.js",
    "api.js",
    "apps.js",
    "authorize.js",
    "consent.js",
    "dashboard.js",
    "dom.js",
    "forms.js",
    "listitems.js",
    "login.js",
    "messages.js",
    "passkey-login.js",
    "passkeys.js",
    "password.js",
    "profile.js",
    "recovery.js",
    "register.js",
    "scopes.js",
    "session.js",
    "sessions.js",
    "todos.js",
    "views.js",
    "webauthn.js",
)
#: The only files served, with their types: nothing else under web/ is reachable. A
#: module must have a JavaScript type, or the browser refuses to run it.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    **dict.fromkeys(MODULES, "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Public, but revalidated on every load, so a deploy shows at once.
    "Cache-Control": "no-cache",
}


@functools.cache
def asset(name: str) -> tuple[str, str]:
    """The text and content type of one served file; ``NotFound`` for anything else."""
    if name not in FILES:
        raise errors.NotFound()
    return (WEB_DIR / name).read_text(encoding="utf-8"), FILES[name]
