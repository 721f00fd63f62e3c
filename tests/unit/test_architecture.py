"""The import-linter contracts of pyproject.toml catch what they claim to catch.

``make lint`` runs ``lint-imports`` on the real tree; these tests run it on a copy of
``chalicelib`` with one wrong import added, so a contract that stopped matching
anything (a renamed package, a wrong container) fails here instead of passing silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LAYERS = "Layers: edge | wiring -> oauth -> services"
NO_CIRCLES = "No circles"


def lint(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own venv's lint-imports, fixed arguments
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Python tree and the contracts, to break one import in."""
    shutil.copytree(ROOT / "chalicelib", tmp_path / "chalicelib", ignore=_not_python)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _not_python(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if not n.endswith(".py") and not (Path(directory) / n).is_dir()}


def add_import(project: Path, module: str, statement: str) -> None:
    path = project / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{statement}\n", encoding="utf-8")


def test_the_tree_keeps_every_contract(project: Path) -> None:
    result = lint(project)
    assert result.returncode == 0, result.stdout
    assert "2 kept, 0 broken" in result.stdout


# (module changed, module it imports): each breaks a rule of the layers contract.
WRONG_WAY = [
    ("chalicelib.store.items", "chalicelib.accounts.users"),  # the store never imports a service
    ("chalicelib.accounts.login", "chalicelib.edge.http"),  # no service imports the edge
    ("chalicelib.crypto.tokens", "chalicelib.store.items"),  # crypto and store are independent
    ("chalicelib.todos.lists", "chalicelib.accounts.users"),  # to-dos never reach into accounts
    ("chalicelib.platform.errors", "chalicelib.crypto.keys"),  # platform is under everything
    ("chalicelib.edge.http", "chalicelib.wiring"),  # the edge is handed services, never builds them
    ("chalicelib.accounts.users", "chalicelib.oauth.clients"),  # accounts never import the provider
]


@pytest.mark.parametrize(("module", "imported"), WRONG_WAY)
def test_a_wrong_way_import_breaks_the_layers(project: Path, module: str, imported: str) -> None:
    source, _, name = imported.rpartition(".")
    add_import(project, module, f"from {source} import {name}")
    result = lint(project)
    assert result.returncode == 1
    assert LAYERS in result.stdout.replace("\n", "")
    importer_layer = ".".join(module.split(".")[:2])
    imported_layer = ".".join(imported.split(".")[:2])
    assert f"{importer_layer} is not allowed to import {imported_layer}:" in result.stdout


def test_a_circle_inside_a_package_is_refused(project: Path) -> None:
    # users.py is imported by login.py; importing login back closes a circle that the
    # layers (which only order packages) cannot see.
    add_import(project, "chalicelib.accounts.users", "from chalicelib.accounts import login")
    result = lint(project)
    assert result.returncode == 1
    assert f"{NO_CIRCLES}: no two packages or modules" in result.stdout.replace("\n", " ")
    assert "No cycles are allowed in chalicelib.accounts" in result.stdout


def test_a_new_package_must_be_given_a_layer(project: Path) -> None:
    (project / "chalicelib" / "reports").mkdir()
    (project / "chalicelib" / "reports" / "__init__.py").write_text('"""Reports."""\n')
    result = lint(project)
    assert result.returncode == 1
    assert "chalicelib.reports" in result.stdout


def test_importing_the_app_loads_no_heavy_library() -> None:
    """The authorizer and the first-party routes run in containers that import app.py:
    authlib (the OAuth provider), fido2 (passkeys) and joserfc load only on the routes
    that need them (wiring.Services.oauth, accounts/passkeys.py)."""
    script = (
        "import sys; import app; "
        "print(sorted(m for m in ('authlib', 'fido2', 'joserfc') if m in sys.modules))"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "GATEHOUSE_STAGE": "local"},
    )
    assert result.stdout.strip() == "[]"
