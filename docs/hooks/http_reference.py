"""MkDocs hook: the HTTP reference's operations, rendered from the served OpenAPI document.

``reference/http.md`` holds the contract's prose and the marker ``<!-- operations -->``;
this hook replaces the marker with one section per operation (method, path, summary,
auth, parameters, request body fields, responses), built from
``chalicelib.edge.openapi.document(app, BODIES)`` exactly as ``GET /openapi.json`` serves it
(app.py's ``_openapi_document``). The reference therefore cannot drift from the API:
it is never written by hand.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

PAGE = "reference/http.md"
MARKER = "<!-- operations -->"
METHODS = ("get", "post", "put", "patch", "delete")

Schema = dict[str, Any]


def served_document(root: Path) -> dict[str, Any]:
    """The OpenAPI document as the app serves it, from the app imported at the local stage."""
    os.environ.setdefault("GATEHOUSE_STAGE", "local")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    gatehouse = importlib.import_module("app")
    document: dict[str, Any] = gatehouse._openapi_document()
    return document


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _resolve(document: dict[str, Any], node: Schema) -> Schema:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _type(schema: Schema) -> str:
    """A schema's type in words; a named schema links to its table under "Schemas"."""
    kind = schema.get("type", "any")
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        text = f"[{name}](#schema-{name.lower()})"
    elif "const" in schema:
        text = f"`{schema['const']!r}`".replace("'", '"')
    elif "enum" in schema:
        text = " or ".join(f'`"{v}"`' for v in schema["enum"])
    elif "anyOf" in schema:
        text = " or ".join(_type(s) for s in schema["anyOf"])
    elif isinstance(kind, list):
        text = " or ".join(str(k) for k in kind)
    elif kind == "array" and "items" in schema:
        text = f"array of {_type(schema['items'])}"
    else:
        text = str(kind)
    return text


def _constraints(schema: Schema) -> str:
    parts = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("maxItems", "max items"),
        ("default", "default"),
        ("contentEncoding", "encoding"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if "description" in schema:
        parts.append(str(schema["description"]))
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            inner = _constraints(option)
            if inner:
                parts.append(inner)
    return "; ".join(parts)


def _fields(schema: Schema, prefix: str = "") -> list[tuple[str, Schema, bool]]:
    """Every member of an object body, nested objects as dotted paths."""
    rows: list[tuple[str, Schema, bool]] = []
    required = set(schema.get("required", []))
    for name, member in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        rows.append((path, member, name in required))
        for option in [member, *member.get("anyOf", [])]:
            if option.get("type") == "object" and "properties" in option:
                rows.extend(_fields(option, f"{path}."))
    return rows


def _operation(document: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"{op['summary']}.", ""]
    schemes = [name for need in op.get("security", []) for name in need]
    auth = "bearer access token (`Authorization: Bearer <JWT>`)" if schemes else "none"
    lines += [f"**Auth**: {auth}", ""]
    parameters = [_resolve(document, p) for p in op.get("parameters", [])]
    if parameters:
        lines += ["| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
        for p in parameters:
            schema = p.get("schema", {})
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_type(schema))} "
                f"| {'yes' if p.get('required') else 'no'} | {_cell(_constraints(schema))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            schema = _resolve(document, content.get("schema", {}))
            required = "required" if body.get("required") else "optional"
            lines += [f"**Request body** ({required}, `{media}`):", ""]
            fields = _fields(schema)
            if fields:
                lines += _field_table(fields, ("field", "required"))
            else:
                lines.append(f"{_cell(_type(schema))}")
            lines.append("")
    lines += ["| status | meaning | body | headers |", "|---|---|---|---|"]
    for status, declared in sorted(op.get("responses", {}).items()):
        answer = _resolve(document, declared)
        content = answer.get("content", {})
        media = ", ".join(
            f"`{kind}` {_type(value.get('schema', {}))}" for kind, value in content.items()
        )
        headers = ", ".join(f"`{name}`" for name in answer.get("headers", {}))
        lines.append(
            f"| {status} | {_cell(str(answer.get('description', '')))} "
            f"| {_cell(media) or '-'} | {headers or '-'} |"
        )
    lines.append("")
    return "\n".join(lines)


def _field_table(fields: list[tuple[str, Schema, bool]], heads: tuple[str, str]) -> list[str]:
    """A table of ``fields`` (name, schema, whether it must be there): a request body's
    fields or a schema's members, ``heads`` naming the first and third columns."""
    name, needed = heads
    rows = [f"| {name} | type | {needed} | notes |", "|---|---|---|---|"]
    for field, value, must in fields:
        rows.append(
            f"| `{field}` | {_cell(_type(value))} | {'yes' if must else 'no'} "
            f"| {_cell(_constraints(value))} |"
        )
    return rows


def _schema(name: str, schema: Schema) -> str:
    lines = [f"### {name} {{#schema-{name.lower()}}}", ""]
    fields = _fields(schema)
    if fields:
        lines += _field_table(fields, ("member", "always present"))
    else:
        notes = _constraints(schema)
        lines.append(_cell(_type(schema)) + (f": {notes}" if notes else ""))
    lines.append("")
    return "\n".join(lines)


def render(document: dict[str, Any]) -> str:
    """One section per operation, in the document's order, then the named schemas."""
    sections = ["## Operations", ""]
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                sections.append(_operation(document, method, path, item[method]))
    sections += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        sections.append(_schema(name, schema))
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker")
    root = Path(config.config_file_path).resolve().parent
    return markdown.replace(MARKER, render(served_document(root)))
