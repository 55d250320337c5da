"""``trainstats great train``: GREAT's run_model.py from a checkout, with per-sample statistics.

    trainstats great train --checkout PATH DATA vocab.txt config.yml -m MODELS -l LOG --stats RUN_DIR \\
        [--noise-manifest M] [--seed N] [--monitor [--on-onset stop]] [-e 1]

Arguments after ``--checkout`` are GREAT's own (see ``integrations/great/README.md``).
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="great_command", metavar="ACTION")
    train = sub.add_parser("train", help="train (or with -e: evaluate) a GREAT checkout, recording per-sample rows",
                           description="Run a GREAT checkout's training with its usual arguments plus --stats.")
    train.add_argument("--checkout", required=True, metavar="PATH",
                       help="GREAT checkout (VHellendoorn/ICLR20-Great); imported, never edited")
    from trainstats.great.main import add_great_arguments

    add_great_arguments(train)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "great_command", None) != "train":
        print("usage: trainstats great train --checkout PATH DATA vocab.txt config.yml [-m M] [-l L] --stats RUN_DIR",
              file=sys.stderr)
        return 2
    # load_checkout checks the checkout, then sets TF_USE_LEGACY_KERAS=1 and verifies it took effect.
    from trainstats.great.main import monitor_options, run_great

    try:
        return run_great(checkout=args.checkout, data_path=args.data_path, vocabulary_path=args.vocabulary_path,
                         config_path=args.config, models=args.models, log_path=args.log,
                         eval_only=args.eval_only, stats=args.stats, noise_manifest=args.noise_manifest,
                         seed=args.seed, echo=lambda line: print(line, flush=True), monitor=monitor_options(args))
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"trainstats great: error: {e}", file=sys.stderr)
        return 2
