"""Deployment package: the app code zip that ``chalice package`` builds, in memory.

Chalice zips ``app.py`` and ``chalicelib/`` (plus two files of its own runtime, reported
separately); dependencies go to its automatic layer and are not counted. Bytecode caches
are left out: Chalice would copy a stray ``__pycache__``, but a clean checkout has none.
"""

from __future__ import annotations

import inspect
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import chalice
import chalice.app

from bench import PROJECT_DIR
from bench.report import Report, Row

BUDGET_BYTES = 500 * 1024


def app_files(project_dir: Path) -> Iterator[tuple[Path, str]]:
    """Each file of the app code and its name in the zip."""
    yield project_dir / "app.py", "app.py"
    for path in sorted((project_dir / "chalicelib").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path, path.relative_to(project_dir).as_posix()


def runtime_files() -> Iterator[tuple[Path, str]]:
    """The two Chalice files ``chalice package`` adds so the handler can import ``chalice``."""
    yield Path(inspect.getfile(chalice.app)), "chalice/app.py"
    yield Path(inspect.getfile(chalice)), "chalice/__init__.py"


def zipped(files: Iterator[tuple[Path, str]]) -> tuple[int, list[zipfile.ZipInfo]]:
    """Bytes of the deflated zip and its entries, built in memory as Chalice builds it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            archive.write(path, name)
        entries = archive.infolist()
    return len(buffer.getvalue()), entries


def measure(report: Report) -> None:
    size, entries = zipped(app_files(PROJECT_DIR))
    runtime, _ = zipped(runtime_files())
    largest = sorted(entries, key=lambda entry: entry.compress_size, reverse=True)[:3]
    biggest = ", ".join(f"{e.filename} {e.compress_size / 1024:.1f} KB" for e in largest)
    report.add(
        Row(
            figure="deployment zip (app code)",
            measured=f"{size / 1024:.1f} KB",
            baseline="-",
            ratio="-",
            budget=f"< {BUDGET_BYTES // 1024} KB",
            passed=size < BUDGET_BYTES,
        ),
        f"Deployment zip: app.py + chalicelib/ ({len(entries)} files, no __pycache__), "
        f"deflated in memory as `chalice package` does; largest deflated: {biggest}. "
        f"Chalice also adds chalice/app.py and chalice/__init__.py, {runtime / 1024:.1f} KB "
        f"deflated on their own; dependencies go to the automatic layer and are not counted.",
    )
