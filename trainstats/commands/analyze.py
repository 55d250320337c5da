"""``trainstats analyze RUN_DIR [RUN_DIR ...] --out DIR``: scores, metrics, detection, plots, index.html."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run directories written by trainstats (several: compared side by side)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--split", choices=["train", "dev"], default="train",
                        help="rows the per-sample scores use (default: train)")
    parser.add_argument("--cutoff-recall", type=float, default=0.99,
                        help="calibrated cut-off: recall it keeps on the calibration half of the noisy samples "
                             "(default 0.99, the AUM paper's 99th percentile)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random calibration split of the noisy samples")
    parser.add_argument("--max-loss-samples", type=int, default=5000,
                        help="training losses kept per epoch, head and noise group for the histograms")
    parser.add_argument("--paper", type=Path, default=None, metavar="CSV",
                        help="the study's per-epoch results (e.g. shared/paper/varmisuse_results.csv: columns model, "
                             "noise_kind, metric, head, split, epoch, noise_percent, value), drawn beside this study's "
                             "curves; without it the report shows the paper's epoch-50 figures only")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="runs analysed at once, each in its own process (default: the cores); the output "
                             "is the same for every N")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from trainstats.analysis import analyze_runs
    from trainstats.analysis.study import default_jobs
    from trainstats.store import Run

    missing = [str(d) for d in args.run_dirs if not Run.exists(d)]
    if missing:
        print(f"trainstats analyze: not a run directory (no trainstats run metadata): {', '.join(missing)}",
              file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print(f"trainstats analyze: --jobs must be a positive number of processes; received {args.jobs}",
              file=sys.stderr)
        return 2
    if not 0.0 < args.cutoff_recall <= 1.0:
        print(f"trainstats analyze: --cutoff-recall must be in (0, 1]; received {args.cutoff_recall}", file=sys.stderr)
        return 2
    published = None
    if args.paper is not None:
        from trainstats.analysis.paper import load_published

        try:
            published = load_published(args.paper)
        except ValueError as exc:
            print(f"trainstats analyze: --paper: {exc}", file=sys.stderr)
            return 2
    if not args.quiet:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    analysis = analyze_runs(args.run_dirs, split=args.split, recall_target=args.cutoff_recall, seed=args.seed,
                            max_loss_samples=args.max_loss_samples, progress=not args.quiet,
                            jobs=args.jobs or default_jobs())
    t1 = time.perf_counter()
    if args.no_plots:
        from trainstats.report.html import write_tables  # matplotlib not needed

        write_tables(analysis, args.out)
        target = args.out / "scores.parquet"
        if published is not None:
            print("trainstats analyze: --paper is drawn in the report; not used with --no-plots", file=sys.stderr)
    else:
        from trainstats.report import write_report

        target = write_report(analysis, args.out, paper=published)
    print(f"analysed {len(args.run_dirs)} run(s) in {t1 - t0:.1f} s, wrote {args.out} in "
          f"{time.perf_counter() - t1:.1f} s; open {target}")
    for m in analysis.messages:
        print(f"  skipped/undefined: {m}")
    return 0
