"""Plots (matplotlib, Agg backend) and the HTML report for a :class:`trainstats.analysis.Analysis`.

>>> from trainstats.analysis import analyze_runs            # doctest: +SKIP
>>> from trainstats.report import write_report              # doctest: +SKIP
>>> write_report(analyze_runs(["runs/noise0", "runs/noise50"]), "report/",   # doctest: +SKIP
...              paper="shared/paper/varmisuse_results.csv")                  # optional: the paper's curves
"""
try:
    import matplotlib  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("trainstats.report needs matplotlib: run `pip install 'trainstats[report]'`") from exc

from trainstats.report.html import write_report, write_tables

__all__ = ["write_report", "write_tables"]
