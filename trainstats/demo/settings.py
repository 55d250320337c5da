"""The demo's knobs: dataset size, model size, training length (default and ``--quick`` presets).

Also the study's design: the noise kinds and levels of the default demo and of the whole grid
(``--grid``), as in Rabin et al. 2023 (two kinds, noise at 0/25/50/75/100 %, one clean run shared).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["DemoSettings", "DEFAULT", "QUICK", "STUDY_KINDS", "DEFAULT_LEVELS", "GRID_LEVELS", "QUICK_SECONDS",
           "DEFAULT_KINDS", "MEASURED_SECONDS", "expected_duration", "defaults_fingerprint", "defaults_markdown"]

#: the study's two noise kinds: label noise (buggy <-> bug-free) and input noise (injected repair markers)
STUDY_KINDS: tuple[str, ...] = ("label", "inject-repair")
#: the default demo's kind: label noise, the study's main finding (``--grid`` and ``--kind`` add the other)
DEFAULT_KINDS: tuple[str, ...] = ("label",)
#: noise levels (fractions) of the default demo: the clean run and one noised run per kind
DEFAULT_LEVELS: tuple[float, ...] = (0.0, 0.5)
#: the study's whole grid (``--grid``): 0/25/50/75/100 % per kind, one shared clean run
GRID_LEVELS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
#: what ``--quick`` takes on the 2-core development machine (seconds, wall; docs and --help read it here)
QUICK_SECONDS = 60


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo trains with. Frozen; derive variants with :meth:`replace`.

    Attributes:
        max_functions: functions taken from the source tree by the builder (two examples each:
            bug-free and buggy), before the split; None = every usable function.
        split_fractions: (train, dev, eval) fractions of the source *files* given to each split (a
            function and its bug never cross splits).
        max_tokens: longest function kept (GREAT tokens); also the model's length limit.
        model: ``"great"`` or ``"transformer"``.
        hidden, num_layers, num_heads, dropout: encoder size.
        vocab_size: sub-token vocabulary size (built from each run's own training split).
        epochs: passes over the training split.
        learning_rate: Adam's peak learning rate.
        warmup_fraction: share of the training steps over which the learning rate rises linearly
            from 0 to ``learning_rate``; it then decays along a cosine to 0 at the last step
            (``keras.optimizers.schedules.CosineDecay``). 0 with ``cosine=False``: constant.
        cosine: decay the learning rate (True) or keep it constant after the warm-up (False).
        token_budget, max_batch: tokens per batch (bucketed padding) and the batch-size cap.
        bucket_width: length-bucket width in tokens (None: powers of two), see ``batch_by_length``.
    """

    max_functions: int | None = None
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_tokens: int = 128
    model: str = "great"
    hidden: int = 64
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.1
    vocab_size: int = 8000
    epochs: int = 8
    learning_rate: float = 5e-3
    warmup_fraction: float = 0.05
    cosine: bool = True
    token_budget: int = 8192
    max_batch: int = 256
    bucket_width: int | None = 8

    def replace(self, **changes) -> "DemoSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: the default demo (see docs/demo.md for what it takes and shows)
DEFAULT = DemoSettings()
#: ``--quick``: a smoke run in about :data:`QUICK_SECONDS` (too small to show memorization)
QUICK = DemoSettings(max_functions=300, max_tokens=64, hidden=32, num_layers=1, num_heads=2, epochs=2,
                     vocab_size=1000, token_budget=4096, max_batch=128)

#: Wall-clock seconds each preset took on the 2-core development machine, nearly idle, as printed by
#: ``trainstats demo`` / ``--grid`` / ``--quick`` ("N run(s) in T s"; the grid from scratch as
#: ``bench/demo_figures.py`` sums it; re-measure after changing a
#: preset). The one source of such figures: the CLI help and docs/demo.md / README.md quote
#: :func:`expected_duration`, and tests/test_cli_rough_edges.py checks that they do.
MEASURED_SECONDS: dict[str, float] = {"default": 756, "grid": 3500, "quick": QUICK_SECONDS}


def expected_duration(preset: str) -> str:
    """``"about 60 s"`` / ``"about 13 minutes"`` for ``"quick"`` / ``"default"`` / ``"grid"`` (from MEASURED_SECONDS)."""
    seconds = MEASURED_SECONDS[preset]
    if seconds < 120:
        return f"about {round(seconds / 10) * 10:.0f} s"
    return f"about {round(seconds / 60):.0f} minutes"


def defaults_fingerprint(settings: DemoSettings = DEFAULT, levels=DEFAULT_LEVELS, kinds=DEFAULT_KINDS,
                         grid_levels=GRID_LEVELS) -> str:
    """A short hash of the demo's design (settings, levels, kinds, grid): docs/demo.md quotes it with
    its measured figures, and a test fails when the code's defaults no longer match it."""
    import hashlib
    import json

    blob = json.dumps([settings.to_dict(), list(levels), list(kinds), list(grid_levels)], sort_keys=True)
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=6).hexdigest()


def defaults_markdown() -> str:
    """The defaults as the Markdown table docs/demo.md shows (a test compares the two)."""
    rows = ["| setting | default | `--quick` |", "|---|---|---|"]
    for name, value in DEFAULT.to_dict().items():
        rows.append(f"| `{name}` | `{value!r}` | `{getattr(QUICK, name)!r}` |")
    pct = lambda levels: ", ".join(f"{100 * v:g} %" for v in levels)  # noqa: E731
    kinds = lambda ks: ", ".join(f"`{k}`" for k in ks)  # noqa: E731
    rows.append(f"| noise kinds | {kinds(DEFAULT_KINDS)} (`--grid`: {kinds(STUDY_KINDS)}) | same |")
    rows.append(f"| noise levels | {pct(DEFAULT_LEVELS)} (`--grid`: {pct(GRID_LEVELS)}) | same |")
    return "\n".join(rows)
