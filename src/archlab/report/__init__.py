"""Reports: self-contained HTML pages (inline CSS, embedded PNG figures) for runs, compares and
experiments, and one page gathering everything under a runs directory."""

from archlab.report.gather import build_report
from archlab.report.html import (
    Section,
    Table,
    render_page,
    write_compare_report,
    write_experiment_report,
    write_run_report,
)

__all__ = [
    "Section",
    "Table",
    "build_report",
    "render_page",
    "write_compare_report",
    "write_experiment_report",
    "write_run_report",
]
