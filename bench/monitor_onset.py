"""What the live memorization monitor finds on the demo: onset epochs and held-out accuracy around them.

For each noise kind (default: 50 % ``label`` and 50 % ``inject-repair``) one demo run is trained with
``trainstats demo``'s pipeline and settings (``trainstats.demo.DEFAULT`` unless overridden) and
``MemorizationMonitor(on_onset="log")``, so training runs to the end and every number below comes from
one run. Printed per run and rule:

* ``flags`` rule (noise flags from the manifest) and ``loss`` rule (loss distribution only: what a user
  without flags gets; its signal does not use the flags, so it is the same with or without them);
* onset epoch (last epoch before the memorization signal rises; found ``patience`` epochs later);
* held-out (dev) joint accuracy at the onset epoch = accuracy with the weights ``on_onset="restore"``
  brings back (they are the weights that epoch's validation pass used: ``tests/test_keras_monitor.py``
  checks the restored model reproduces it), at the last epoch, and at the best epoch in hindsight.

    .venv/bin/python bench/monitor_onset.py [--out DIR] [--epochs N] [--max-functions N] [--kinds label,inject-repair]

Everything (data, runs with ``monitor/`` folders, ``onsets.json``) stays in ``--out`` (default: a temp dir).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _dev_accuracy(signals, head):
    s = signals[(signals["split"] == "dev") & (signals["head"] == head) & (signals["subset"] == "all")
                & (signals["noise_group"] == "all") & (signals["metric"] == "accuracy")]
    return s.set_index("epoch")["value"].sort_index()


def summarize_run(run_dir: Path, head: str = "joint") -> list[dict]:
    """One dict per onset rule from a run's ``monitor/signals.parquet`` and ``onset.json``."""
    import pandas as pd

    from trainstats.store import monitor_dir

    folder = monitor_dir(run_dir)
    signals = pd.read_parquet(folder / "signals.parquet")
    onsets = json.loads((folder / "onset.json").read_text())["onsets"]
    dev = _dev_accuracy(signals, head)
    rows = []
    for rule, onset in onsets.items():
        epoch = None if onset is None else onset["epoch"]
        rows.append({"run": run_dir.name, "rule": rule, "onset_epoch": epoch,
                     "detected_at": None if onset is None else onset["detected_at"],
                     "dev_at_onset": None if epoch is None else float(dev[epoch]),
                     "dev_last": float(dev.iloc[-1]), "last_epoch": int(dev.index[-1]),
                     "dev_best": float(dev.max()), "best_epoch": int(dev.idxmax())})
    return rows


def _pct(x):
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the demo's)")
    parser.add_argument("--max-functions", type=int, default=None, help="(default: the demo's)")
    parser.add_argument("--kinds", default="label,inject-repair")
    parser.add_argument("--level", type=float, default=50.0, help="noise level in percent (default 50)")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
    from trainstats.demo import DEFAULT, run_demo

    settings = DEFAULT
    if args.epochs is not None:
        settings = settings.replace(epochs=args.epochs)
    if args.max_functions is not None:
        settings = settings.replace(max_functions=args.max_functions)
    out = args.out or Path(tempfile.mkdtemp(prefix="trainstats-monitor-onset-"))
    rows, data, t0 = [], None, time.perf_counter()
    for kind in args.kinds.split(","):
        result = run_demo(out / kind, data=data, kind=kind, levels=[args.level / 100.0], seeds=[args.seed],
                          settings=settings, progress=False,
                          monitor={"on_onset": "log", "patience": args.patience})
        data = data or out / kind / "data" / "clean"  # the second kind trains on the same built data
        for run_dir in result.run_dirs:
            rows += summarize_run(run_dir)
    (out / "onsets.json").write_text(json.dumps({"settings": settings.to_dict(), "patience": args.patience,
                                                 "rows": rows}, indent=2))
    print(f"demo settings: {settings.to_dict()}; patience {args.patience}; {time.perf_counter() - t0:.0f} s; in {out}")
    print("held-out = dev joint accuracy; 'at onset' = with the weights on_onset='restore' brings back")
    print(f"{'run':<28} {'rule':<6} {'onset':>5} {'found':>5} | {'at onset':>8} {'last':>13} {'best':>13}")
    for r in rows:
        onset = "-" if r["onset_epoch"] is None else str(r["onset_epoch"])
        found = "-" if r["detected_at"] is None else str(r["detected_at"])
        print(f"{r['run']:<28} {r['rule']:<6} {onset:>5} {found:>5} | {_pct(r['dev_at_onset']):>8} "
              f"{_pct(r['dev_last'])} (ep {r['last_epoch']:>2}) {_pct(r['dev_best'])} (ep {r['best_epoch']:>2})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
