"""docs/demo.md cannot go stale: its defaults table is the code's, and its measured figures carry the
fingerprint of the defaults they were measured with (``bench/demo_figures.py`` prints both)."""
from __future__ import annotations

from pathlib import Path

from trainstats.demo.settings import GRID_LEVELS, defaults_fingerprint, defaults_markdown

DOC = (Path(__file__).resolve().parents[1] / "docs" / "demo.md").read_text(encoding="utf-8")


def test_documented_defaults_are_the_code_defaults():
    assert defaults_markdown() in DOC, "docs/demo.md's defaults table differs from trainstats.demo.settings " \
                                       "(paste trainstats.demo.settings.defaults_markdown())"


def test_documented_figures_were_measured_with_the_current_defaults():
    for name, fp in (("default demo", defaults_fingerprint()), ("grid", defaults_fingerprint(levels=GRID_LEVELS))):
        assert f"design fingerprint {fp}" in DOC, (
            f"docs/demo.md has no figures of the {name} measured with the current defaults (fingerprint {fp}): "
            "re-run it and paste `python bench/demo_figures.py OUT`")
