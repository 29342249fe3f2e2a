"""The page model (sections of facts, text, tables, figures) rendered through a Jinja2 template.

A page is self-contained: inline CSS (``templates/report.css``), figures embedded as base64 PNGs,
no external script, stylesheet, font or image, so it opens offline from anywhere (mailed, copied
off a cluster). The templates (``templates/page.html.j2``, ``section.html.j2``) render with
autoescaping on, so every string that comes from run files — run names, descriptions, table
cells, captions — is escaped; only the CSS file and the base64 figure data are ours.
"""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from archlab.report.formatting import fmt_value, looks_numeric

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to emphasise


@dataclass
class Section:
    title: str
    text: str | list[str] = ""  # paragraphs; a string is split on blank lines
    tables: list[Table] = field(default_factory=list)
    figures: list[Path | str | tuple[Path | str, str]] = field(default_factory=list)  # path or (path, caption)
    facts: list[tuple[str, Any]] = field(default_factory=list)  # a key: value list under the title
    verdict: str = ""  # shown in a highlighted box
    supported: bool | None = None  # colours the verdict box: True green, False red, None neutral


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every {{ value }} is HTML-escaped
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _paragraphs(text: str | list[str]) -> list[str]:
    if isinstance(text, str):
        text = [p.strip() for p in text.split("\n\n")]
    return [p for p in text if p]


def _text(v: Any) -> str:
    return v if isinstance(v, str) else fmt_value(v)


def _table(t: Table) -> dict[str, Any]:
    rows = [
        [{"text": _text(v), "numeric": looks_numeric(v), "bold": (i, j) in t.bold} for j, v in enumerate(row)]
        for i, row in enumerate(t.rows)
    ]
    return {"caption": t.caption, "columns": [str(c) for c in t.columns], "rows": rows}


def _figure(fig: Path | str | tuple[Path | str, str]) -> dict[str, str]:
    """A figure's caption and base64 PNG data (empty where the file is missing or not a PNG)."""
    path, caption = fig if isinstance(fig, tuple) else (fig, "")
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    b64 = base64.b64encode(data).decode("ascii") if data.startswith(PNG_MAGIC) else ""
    return {"name": path.name, "caption": caption or path.stem.replace("-", " "), "b64": b64}


def _slug(i: int, title: str) -> str:
    s = "".join(c.lower() if c.isalnum() else "-" for c in title).strip("-")
    return f"s{i}-{s[:40]}"


def _section(i: int, s: Section) -> dict[str, Any]:
    return {
        "slug": _slug(i, s.title),
        "title": s.title,
        "facts": [(str(k), _text(v)) for k, v in s.facts],
        "verdict": s.verdict,
        "verdict_class": {True: " yes", False: " no"}.get(s.supported, ""),
        "paragraphs": _paragraphs(s.text),
        "tables": [_table(t) for t in s.tables],
        "figures": [_figure(f) for f in s.figures],
    }


def render_page(title: str, sections: list[Section], *, intro: str | list[str] = "") -> str:
    """One self-contained HTML page (inline CSS, embedded PNGs, no external references)."""
    return (
        _environment()
        .get_template("page.html.j2")
        .render(
            title=title,
            intro=_paragraphs(intro),
            nav=len(sections) > 3,
            sections=[_section(i, s) for i, s in enumerate(sections)],
            written=time.strftime("%Y-%m-%d %H:%M:%S"),
        )
        + "\n"
    )
