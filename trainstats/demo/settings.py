"""The demo's knobs: dataset size, model size, training length (default and ``--quick`` presets)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["DemoSettings", "DEFAULT", "QUICK", "MEASURED_SECONDS", "expected_duration"]


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo trains with. Frozen; derive variants with :meth:`replace`.

    Attributes:
        max_functions: functions taken from the source tree by the builder (two examples each:
            bug-free and buggy), before the train/dev/eval split (80/10/10 by file).
        split_fractions: (train, dev, eval) fractions of the source files given to each split.
        max_tokens: longest function kept (GREAT tokens); also the model's length limit.
        model: ``"great"`` or ``"transformer"``.
        hidden, num_layers, num_heads, dropout: encoder size.
        vocab_size: sub-token vocabulary size (built from each run's own training split).
        epochs: passes over the training split.
        learning_rate: Adam learning rate.
        token_budget, max_batch: tokens per batch (bucketed padding) and the batch-size cap.
    """

    max_functions: int = 3000
    split_fractions: tuple[float, float, float] = (0.75, 0.2, 0.05)
    max_tokens: int = 80
    model: str = "great"
    hidden: int = 64
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.0
    vocab_size: int = 4000
    epochs: int = 10
    learning_rate: float = 3e-3
    token_budget: int = 2048
    max_batch: int = 64

    def replace(self, **changes) -> "DemoSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: the default demo (three noise levels; see MEASURED_SECONDS)
DEFAULT = DemoSettings()
#: ``--quick``: a smoke run (too small to show memorization; see MEASURED_SECONDS)
QUICK = DemoSettings(max_functions=300, max_tokens=64, hidden=32, num_layers=1, num_heads=2, epochs=2,
                     vocab_size=1000)

#: Wall-clock seconds each preset took on the 2-core development machine, nearly idle, as printed by
#: ``trainstats demo`` / ``trainstats demo --quick`` ("N run(s) in T s"; re-measure after changing a
#: preset). The one source of such figures: the CLI help and docs/demo.md / README.md quote
#: :func:`expected_duration`, and tests/test_demo_figures.py checks that they do.
MEASURED_SECONDS: dict[str, float] = {"default": 517, "quick": 40}


def expected_duration(preset: str) -> str:
    """``"about 40 s"`` / ``"about 9 minutes"`` for ``"quick"`` / ``"default"`` (from MEASURED_SECONDS)."""
    seconds = MEASURED_SECONDS[preset]
    if seconds < 120:
        return f"about {round(seconds / 10) * 10:.0f} s"
    return f"about {round(seconds / 60):.0f} minutes"
