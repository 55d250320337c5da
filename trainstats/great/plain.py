"""Run a GREAT checkout's own, uninstrumented ``train()`` with a seed — the baseline for comparisons.

``python -m trainstats.great.plain CHECKOUT DATA vocab.txt config.yml -m MODELS -l LOG --seed N`` does
what ``python running/run_model.py DATA vocab.txt config.yml -m MODELS -l LOG`` does, after seeding like
``--seed N`` of the instrumented run (:func:`trainstats.great.checkout.seed_everything`, just before the
model is built). Same seed, same data: the same ``log.txt`` accuracies as the instrumented run.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

__all__ = ["run_plain"]


def run_plain(*, checkout: str | os.PathLike, data_path: str, vocabulary_path: str, config_path: str,
              models: str | None, log_path: str | None, seed: int | None) -> None:
    """GREAT's ``train(data, config, models, log)`` from ``checkout``, seeded when ``seed`` is given."""
    from trainstats.great.checkout import load_checkout, seed_everything

    great = load_checkout(checkout)
    import yaml

    with open(config_path) as fh:
        config = yaml.safe_load(fh)
    data = great.make_data(data_path, config, vocabulary_path)
    if seed is not None:
        seed_everything(seed)
    great.run_model.train(data, config, models, log_path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainstats.great.plain", description=__doc__.split("\n")[0])
    ap.add_argument("checkout")
    ap.add_argument("data_path")
    ap.add_argument("vocabulary_path")
    ap.add_argument("config")
    ap.add_argument("-m", "--models")
    ap.add_argument("-l", "--log")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    run_plain(checkout=a.checkout, data_path=a.data_path, vocabulary_path=a.vocabulary_path,
              config_path=a.config, models=a.models, log_path=a.log, seed=a.seed)
    return 0


if __name__ == "__main__":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    sys.exit(main())
