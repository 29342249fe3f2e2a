"""Reports: self-contained HTML pages (inline CSS, embedded PNG figures) for runs, compares and
experiments, and one page gathering everything under a runs directory.

``formatting`` (numbers as text), ``page`` (the page model and its Jinja2 templates, autoescaped),
``sections`` (a compare, an experiment or a run read from its files), ``gather`` (``archlab
report``) and ``figures`` (matplotlib).
"""

from archlab.report.gather import build_report
from archlab.report.page import Section, Table, render_page
from archlab.report.sections import write_compare_report, write_experiment_report, write_run_report

__all__ = [
    "Section",
    "Table",
    "build_report",
    "render_page",
    "write_compare_report",
    "write_experiment_report",
    "write_run_report",
]
