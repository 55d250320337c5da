"""``trainstats demo``: the memorization study in miniature (build data, noise, train, analyze, report).

>>> from trainstats.demo import run_demo, QUICK                                  # doctest: +SKIP
>>> result = run_demo("demo-out", settings=QUICK)                                # doctest: +SKIP
>>> print(result.report)                                                          # doctest: +SKIP
"""
from trainstats.demo.settings import DEFAULT, QUICK, DemoSettings
from trainstats.demo.study import DemoResult, run_demo, run_name
from trainstats.demo.summary import format_summary, summarize

__all__ = ["DEFAULT", "QUICK", "DemoSettings", "DemoResult", "run_demo", "run_name", "summarize", "format_summary"]
