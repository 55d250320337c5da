"""Print the measured figures of finished demo folders as the Markdown block docs/demo.md quotes.

    .venv/bin/python bench/demo_figures.py demo-out                 # after `trainstats demo --out demo-out`
    .venv/bin/python bench/demo_figures.py grid-out                 # after `trainstats demo --grid --out grid-out`

Everything comes from the folder's own ``demo.json`` (settings, timings, peak RSS, the design's
fingerprint), ``demo_state.json`` (per-run training speed) and ``summary.json`` (our figures beside the
paper's). docs/demo.md pastes this output verbatim; ``tests/test_demo_docs.py`` fails when the code's
defaults no longer have the fingerprint quoted there, i.e. when the figures would be stale.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainstats.demo.summary import format_summary  # noqa: E402


def figures(out: Path) -> str:
    demo = json.loads((out / "demo.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    state = json.loads((out / "demo_state.json").read_text())
    t = demo["timings_s"]
    runs = {name: rec for name, rec in state["runs"].items() if rec.get("done")}
    speeds = [rec["samples_per_s"] for rec in runs.values() if rec.get("samples_per_s")]
    train_s = [v for k, v in t.items() if k.startswith("train:")]
    n_train = {rec.get("n_train") for rec in runs.values()}
    lines = [
        f"design fingerprint {demo['defaults_fingerprint']}; kinds {', '.join(demo['kinds'])}; levels "
        f"{', '.join(f'{100 * v:g} %' for v in demo['levels'])}; {len(runs)} runs; seeds {demo['seeds']}",
        f"data: {', '.join(str(n) for n in sorted(x for x in n_train if x))} training examples; "
        f"epochs {demo['settings']['epochs']}",
        f"wall time {t['total'] / 60:.1f} min (build {t.get('build', 0):.0f} s, training "
        f"{sum(train_s) / 60:.1f} min = {statistics.median(train_s) if train_s else float('nan'):.0f} s per run "
        f"(median), analysis and report {t.get('analyze', 0):.0f} s); peak RSS {demo.get('peak_rss_mb')} MB",
        f"training speed: {statistics.median(speeds) if speeds else float('nan'):.0f} training samples/s per run "
        "(median over runs of the median epoch after the first; dev pass and capture included)",
        "",
        format_summary(summary),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="+", type=Path, help="demo output folder(s)")
    args = ap.parse_args()
    for i, out in enumerate(args.out):
        if i:
            print()
        print(figures(out))


if __name__ == "__main__":
    main()
