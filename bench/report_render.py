"""Benchmark: the report of a study — how long it takes to write, how big it is, and whether it renders.

Analyses run directories, writes the report, opens ``index.html`` in headless Chromium (offline,
see ``trainstats.report.browser``), checks that every image loads and saves a screenshot of the
first screen. Prints the analysis and report times, the folder size (target: < 5 MB for the default
demo) split into images and tables, and the image check.

    trainstats demo --out /tmp/demo --paper ../shared/paper/varmisuse_results.csv
    python bench/report_render.py /tmp/demo/runs/* --out /tmp/demo-report --paper ../shared/paper/varmisuse_results.csv
    python bench/report_render.py --demo /tmp/demo           # the runs of a demo folder

Needs Chromium (Debian: ``apt-get install chromium``) for the render check; without it the check is
skipped and said so.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, help="run directories")
    p.add_argument("--demo", type=Path, help="a `trainstats demo` output folder (uses its runs/)")
    p.add_argument("--out", type=Path, help="report folder (default: <demo>/report-bench or ./report-bench)")
    p.add_argument("--paper", type=Path, help="the study's per-epoch CSV (trainstats analyze --paper)")
    p.add_argument("--screenshot", type=Path, help="screenshot path (default: <out>/../report-screenshot.png)")
    p.add_argument("--height", type=int, default=1400, help="screenshot height in CSS pixels (width 1280)")
    args = p.parse_args(argv)
    runs = list(args.runs) + (sorted((args.demo / "runs").iterdir()) if args.demo else [])
    if not runs:
        p.error("give run directories or --demo")
    out = args.out or ((args.demo / "report-bench") if args.demo else Path("report-bench"))
    shot = args.screenshot or out.parent / f"{out.name}-screenshot.png"

    from trainstats.analysis import analyze_runs
    from trainstats.report import write_report
    from trainstats.report.browser import check_report, find_chromium

    t0 = time.perf_counter()
    analysis = analyze_runs(runs)
    t1 = time.perf_counter()
    index = write_report(analysis, out, paper=args.paper)
    t2 = time.perf_counter()
    files = [f for f in out.iterdir() if f.is_file()]
    page = sum(f.stat().st_size for f in files if f.suffix in (".png", ".html"))
    total = sum(f.stat().st_size for f in files)
    print(f"{len(runs)} runs: analysis {t1 - t0:.1f} s, report {t2 - t1:.1f} s "
          f"({sum(f.suffix == '.png' for f in files)} figures)")
    print(f"page (index.html + figures) {page / 1e6:.2f} MB ({'under' if page < 5e6 else 'OVER'} the 5 MB target); "
          f"with the tables (scores.parquet, metrics.csv, ...) {total / 1e6:.2f} MB")
    if find_chromium() is None:
        print("render check skipped: no Chromium (Debian: apt-get install chromium)")
        return 0
    res = check_report(index, screenshot=shot, window=(1280, args.height))
    print(f"Chromium: {res.images} images, {len(res.broken)} broken {res.broken or ''}, "
          f"{len(res.external)} network resources {res.external or ''}, {res.seconds:.1f} s; "
          f"screenshot {res.screenshot}")
    return 1 if res.broken or res.external else 0


if __name__ == "__main__":
    sys.exit(main())
