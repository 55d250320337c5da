"""``trainstats demo``: build data, noise it per kind and level, train one small model per run with
per-sample capture (one clean run shared by the kinds), analyse the runs, and print the report's path and
a summary beside the paper's figures."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path


def _levels(text: str) -> list[float]:
    from trainstats.commands.percent import parse_percentages

    try:
        return parse_percentages(text, flag="--levels")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative ints such as 0,1; received {text!r}")
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"seeds must be non-negative ints; received {text!r}")
    return values


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if not kinds:
        raise argparse.ArgumentTypeError(f"expected noise kinds such as label,inject-repair; received {text!r}")
    return kinds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainstats.demo.settings import DEFAULT_LEVELS, GRID_LEVELS, STUDY_KINDS, expected_duration

    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: a new folder trainstats-demo-XXXX in the current directory)")
    parser.add_argument("--data", type=Path, default=None,
                        help="existing GREAT-format shards with train/ and dev/ splits (default: build from the "
                             "running Python's standard library)")
    parser.add_argument("--source", type=Path, default=None, action="append",
                        help="Python source tree to build the data from (default: the standard library); "
                             "repeat for several trees, built as one dataset split by file")
    parser.add_argument("--levels", type=_levels, default=None,
                        help="noise levels in percent, comma-separated (default: "
                             f"{','.join(f'{100 * v:g}' for v in DEFAULT_LEVELS)}; --grid: "
                             f"{','.join(f'{100 * v:g}' for v in GRID_LEVELS)}); 0.5 looks like a fraction and is refused: "
                             "write 50, or 0.5%% for half a percent")
    parser.add_argument("--grid", action="store_true",
                        help="the study's whole grid: both kinds at " + "/".join(f"{100 * v:g}" for v in GRID_LEVELS)
                             + " %% with one shared clean run")
    parser.add_argument("--kind", type=_kinds, default=list(STUDY_KINDS), metavar="KIND[,KIND]",
                        help=f"noise kind(s), comma-separated (default: {','.join(STUDY_KINDS)}; "
                             "see `trainstats noise --help`)")
    parser.add_argument("--seeds", type=_ints, default=[0], help="seeds, comma-separated (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per run (default: preset's)")
    parser.add_argument("--model", choices=["great", "transformer"], default=None,
                        help="model family (default: great)")
    parser.add_argument("--max-functions", type=int, default=None,
                        help="functions taken from the source tree (two examples each; default: preset's)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run, {expected_duration('quick')} on 2 CPU cores (tiny data and model; too "
                             "small to show memorization; the full demo takes "
                             f"{expected_duration('default')})")
    parser.add_argument("--paper", type=Path, default=None, metavar="CSV",
                        help="the study's per-epoch results CSV (e.g. shared/paper/varmisuse_results.csv), drawn in "
                             "the report beside the demo's curves (see `trainstats analyze --paper`)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs trained at once, each in its own process with cores/JOBS threads "
                             "(default: 2 on a machine with 2 or more cores, else 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--monitor", action="store_true",
                        help="watch each training live with trainstats.keras.MemorizationMonitor: TensorBoard "
                             "summaries and onset detection in OUT/runs/<run>/_trainstats/monitor (see docs/monitor.md)")
    parser.add_argument("--on-onset", choices=["log", "stop", "restore"], default="log",
                        help="with --monitor, at the memorization onset: record it (default), stop training, or "
                             "stop and restore the onset epoch's weights")


def run(args: argparse.Namespace) -> int:
    from trainstats.demo import DEFAULT, QUICK
    from trainstats.demo.settings import DEFAULT_LEVELS, GRID_LEVELS

    levels = args.levels if args.levels is not None else list(GRID_LEVELS if args.grid else DEFAULT_LEVELS)
    if args.grid and args.levels is not None:
        print("trainstats demo: give --grid or --levels, not both", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else DEFAULT
    changes = {}
    if args.epochs is not None:
        if args.epochs < 1:
            print(f"trainstats demo: --epochs must be >= 1; received {args.epochs}", file=sys.stderr)
            return 2
        changes["epochs"] = args.epochs
    if args.model is not None:
        changes["model"] = args.model
    if args.max_functions is not None:
        if args.max_functions < 10:
            print(f"trainstats demo: --max-functions must be >= 10; received {args.max_functions}", file=sys.stderr)
            return 2
        changes["max_functions"] = args.max_functions
    settings = settings.replace(**changes)
    if args.data is not None and args.source is not None:
        print("trainstats demo: give --data or --source, not both", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="trainstats-demo-", dir=os.getcwd()))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    # Keras warns on every epoch of a dataset of unknown length; the demo's datasets are finite on purpose
    warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    logging.getLogger("trainstats").setLevel(logging.WARNING)

    from trainstats.demo import format_summary, run_demo
    from trainstats.demo.runner import default_jobs

    if args.jobs is not None and args.jobs < 1:
        print(f"trainstats demo: --jobs must be >= 1; received {args.jobs}", file=sys.stderr)
        return 2

    try:
        result = run_demo(out, data=args.data, source=args.source, levels=levels, kinds=args.kind,
                          seeds=args.seeds, settings=settings, progress=not args.quiet, paper=args.paper,
                          monitor={"on_onset": args.on_onset} if args.monitor else None,
                          jobs=default_jobs() if args.jobs is None else args.jobs)
    except (ValueError, FileNotFoundError) as exc:
        print(f"trainstats demo: {exc}", file=sys.stderr)
        return 2
    t = result.timings
    print(f"trainstats demo: {len(result.run_dirs)} run(s) in {t['total']:.0f} s; everything is in {result.out_dir}")
    print(f"report: {result.report}")
    print()
    print("Training accuracy is scored against the labels as trained on (noisy); held-out = clean dev code.")
    print("'memorized': the noised group only memorization can fit, against its noisy labels. See docs/demo.md.")
    print(format_summary(result.summary))
    if args.monitor:
        print(f"\nlive monitor: tensorboard --logdir {result.out_dir / 'runs'}  (signals and onsets: "
              "runs/<run>/_trainstats/monitor/signals.parquet, onset.json)")
    return 0
