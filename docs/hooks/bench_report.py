"""MkDocs hook: the performance page shows the bench's latest report, bench/REPORT.md.

``make bench`` rewrites ``bench/REPORT.md`` and ``bench/latency.png``; the page holds the
marker ``<!-- bench-report -->``, which this hook replaces with the report itself (its
headings moved two levels down, under the page's own), and the chart is added to the
site beside the page, so the docs always show the committed run and never a copy.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

PAGE = "performance.md"
MARKER = "<!-- bench-report -->"
CHART = "latency.png"


def _bench(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent / "bench"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """bench/latency.png, which the report shows, served beside the performance page."""
    chart = _bench(config) / CHART
    files.append(File.generated(config, CHART, abs_src_path=str(chart)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker")
    report = (_bench(config) / "REPORT.md").read_text(encoding="utf-8")
    report = re.sub(r"^(#+) ", r"\1## ", report, flags=re.MULTILINE)
    return markdown.replace(MARKER, report)
