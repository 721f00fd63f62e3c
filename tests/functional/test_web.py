"""The web page's files as served (GET /, /assets/...), and what the strict
Content-Security-Policy requires of them: no inline script or style, nothing from
another origin, user data never written as HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app import app as gatehouse
from chalicelib.edge import web
from tests.assertions import assert_problem, header
from tests.conftest import Api

FILES = [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/assets/app.css", "app.css", "text/css; charset=utf-8"),
    *[(f"/assets/{name}", name, "text/javascript; charset=utf-8") for name in web.MODULES],
]
#: An import statement: `import { a, b } from "./api.js";` or `import "./register.js";`.
IMPORT = re.compile(r'^import (?:\{[\w$,\s]+\} from )?"([^"]+)";', re.M)


class Markup(HTMLParser):
    """Collects what the CSP would refuse in a page, and which ids it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []
        self.scripts: list[tuple[str | None, str]] = []
        self.ids: set[str] = set()
        self.labels_for: set[str] = set()
        self.inputs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "style" or "style" in found:
            self.refused.append(f"inline style on <{tag}>")
        if any(name.startswith("on") for name in found):
            self.refused.append(f"inline event handler on <{tag}>")
        if tag == "script":
            if not found.get("src"):
                self.refused.append("inline <script>")
            self.scripts.append((found.get("type"), found.get("src") or ""))
        for name in ("src", "href", "action"):
            value = found.get(name) or ""
            if re.match(r"^(https?:)?//", value):
                self.refused.append(f"<{tag} {name}={value}> from another origin")
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "label" and found.get("for"):
            self.labels_for.add(str(found["for"]))
        if tag == "input":
            self.inputs.add(str(found.get("id")))


@pytest.mark.parametrize(("path", "name", "content_type"), FILES)
def test_each_file_is_served_with_its_type_and_the_strict_policy(
    api: Api, path: str, name: str, content_type: str
) -> None:
    response = api.get(path)

    assert response.status_code == 200
    assert header(response, "Content-Type") == content_type
    assert (
        header(response, "Content-Security-Policy")
        == web.SECURITY_HEADERS["Content-Security-Policy"]
    )
    assert header(response, "X-Frame-Options") == "DENY"
    assert header(response, "X-Content-Type-Options") == "nosniff"
    assert response.body == (web.WEB_DIR / name).read_bytes()


def test_nothing_else_is_served_from_assets(api: Api) -> None:
    assert_problem(api.get("/assets/index.html.bak"), 404, "not_found")
    assert_problem(api.get("/assets/..%2fweb.py"), 404, "not_found")


def test_every_module_is_served_and_imports_only_served_siblings(api: Api) -> None:
    """No build step: the browser resolves each import itself, so a module left out of
    ``web.MODULES`` or imported by another path would break the page."""
    assert sorted(path.name for path in web.WEB_DIR.glob("*.js")) == sorted(web.MODULES)
    imported = set()
    for name in web.MODULES:
        text = api.get(f"/assets/{name}").body.decode("utf-8")
        specifiers = IMPORT.findall(text)
        assert len(specifiers) == len(re.findall(r"^import\b", text, re.M)), name
        for specifier in specifiers:
            # Only a sibling by a relative path: nothing from another origin or folder.
            assert specifier.startswith("./"), f"{name} imports {specifier}"
            assert specifier[2:] in web.MODULES, f"{name} imports {specifier}"
            imported.add(specifier[2:])
    assert imported == set(web.MODULES) - {"main.js"}


def test_the_page_has_nothing_the_policy_would_refuse_and_labels_every_input(api: Api) -> None:
    markup = Markup()
    markup.feed(api.get("/").body.decode("utf-8"))

    assert markup.refused == []
    # Relative URLs: the page works at "/" locally and at "/<stage>/" on API Gateway.
    assert markup.scripts == [("module", "assets/main.js")]
    assert markup.inputs <= markup.labels_for
    assert {"login-form", "register-form", "todo-form", "todo-list", "session-list"} <= markup.ids


def test_the_script_writes_user_data_as_text_only_and_keeps_tokens_in_memory(api: Api) -> None:
    script = "\n".join(api.get(f"/assets/{name}").body.decode("utf-8") for name in web.MODULES)
    css = api.get("/assets/app.css").body.decode("utf-8")

    for refused in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert refused not in script
    for storage in ("localStorage", "sessionStorage", "document.cookie"):
        assert storage not in script
    assert "http://" not in script and "https://" not in script
    assert "@import" not in css and "url(" not in css


def test_a_stage_root_without_its_slash_redirects_so_relative_assets_resolve(
    api: Api,
) -> None:
    """API Gateway serves the page's resource "/" for both /api and /api/; only /api/
    resolves the page's relative asset links inside the stage."""
    event = {
        "httpMethod": "GET",
        "path": "/",
        "resource": "/",
        "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com"},
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": "/",
            "httpMethod": "GET",
            "path": "/api",
            "stage": "api",
            "requestId": "test-request",
            "identity": {"sourceIp": "203.0.113.9"},
        },
    }
    answer = gatehouse(event, None)

    assert answer["statusCode"] == 301
    assert answer["headers"]["Location"] == "/api/"
    assert api.get("/").status_code == 200  # locally the page sits at the root
