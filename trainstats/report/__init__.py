"""Plots (matplotlib, Agg backend) and the HTML report for a :class:`trainstats.analysis.Analysis`.

>>> from trainstats.analysis import analyze_runs            # doctest: +SKIP
>>> from trainstats.report import write_report              # doctest: +SKIP
>>> write_report(analyze_runs(["runs/noise0", "runs/noise50"]), "report/",   # doctest: +SKIP
...              paper="shared/paper/varmisuse_results.csv")                  # optional: the paper's curves

``write_tables`` (Parquet/CSV only) needs no matplotlib; ``write_report`` does, and raises an
ImportError naming the pip extra when it is missing.
"""
from trainstats.report.html import write_report, write_tables

__all__ = ["write_report", "write_tables"]
