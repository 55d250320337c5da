"""Import a GREAT checkout (VHellendoorn/ICLR20-Great) from its path, under the legacy tf-keras.

The checkout is imported, never edited or copied: its root and ``running/`` folder go on ``sys.path``
(as ``python running/run_model.py`` from the root would have them) and its modules are loaded as they
are. GREAT's model code needs ``tf.keras`` to be the legacy tf-keras (Keras 2): under Keras 3 it
silently trains only part of its weights. :func:`use_legacy_keras` must therefore run before anything
touches ``tf.keras`` in the process.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["GreatCheckout", "load_checkout", "use_legacy_keras", "seed_everything"]

_REQUIRED = ("running/run_model.py", "running/meta_model.py", "running/checkpoint_tracker.py",
             "data/data_loader.py", "data/vocabulary.py", "models")
_GREAT_MODULES = ("data", "models", "meta_model", "checkpoint_tracker", "run_model")


def use_legacy_keras() -> None:
    """Make ``tf.keras`` the legacy tf-keras for this process (sets ``TF_USE_LEGACY_KERAS=1``).

    Raises:
        ImportError: tf-keras is not installed (``pip install 'trainstats[great]'``).
        RuntimeError: TensorFlow already bound ``tf.keras`` to Keras 3 in this process; run GREAT in a
            fresh process (the ``trainstats great`` command and the drop-in script do).
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        raise ImportError("GREAT needs the legacy tf-keras: run `pip install 'trainstats[great]'`") from None
    import tensorflow as tf

    bound = {"tf.keras": tf.keras.layers.Layer.__module__, "tf.optimizers": tf.optimizers.Adam.__module__}
    wrong = {k: v for k, v in bound.items() if not v.startswith("tf_keras")}
    if wrong:
        raise RuntimeError(
            f"tf.keras is already bound to Keras 3 in this process ({wrong}); GREAT needs tf-keras. Set "
            "TF_USE_LEGACY_KERAS=1 before TensorFlow is first used, e.g. run it in a fresh process.")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random`` (GREAT's batch pivots), numpy and TensorFlow's global seed.

    Called just before the model is built, it makes a GREAT run repeatable: the same seed gives the
    same batches, dropout masks and weights, instrumented or not.
    """
    import random

    import numpy as np
    import tensorflow as tf

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int; received {type(seed).__name__} {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    tf.random.set_seed(seed)


@dataclass
class GreatCheckout:
    """The imported modules of one GREAT checkout."""

    path: Path
    data_loader: ModuleType
    vocabulary: ModuleType
    meta_model: ModuleType
    checkpoint_tracker: ModuleType
    run_model: ModuleType
    commit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def make_data(self, data_path: str, config: dict, vocabulary_path: str) -> Any:
        """``DataLoader(data_path, config["data"], Vocabulary(vocabulary_path))`` of the checkout."""
        return self.data_loader.DataLoader(str(data_path), config["data"],
                                           self.vocabulary.Vocabulary(str(vocabulary_path)))


def _git_commit(path: Path) -> str | None:
    if not (path / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def load_checkout(path: str | os.PathLike) -> GreatCheckout:
    """Import the GREAT checkout at ``path`` (after :func:`use_legacy_keras`).

    Raises:
        FileNotFoundError: ``path`` lacks one of GREAT's files (all missing ones are named).
        ImportError: a module named like GREAT's (``data``, ``models`` ...) is already imported from
            elsewhere, or the checkout fails to import.
    """
    root = Path(path).expanduser().resolve()
    missing = [p for p in _REQUIRED if not (root / p).exists()]
    if missing:
        raise FileNotFoundError(f"{root} is not a GREAT checkout (VHellendoorn/ICLR20-Great): missing {missing}")
    for name in _GREAT_MODULES:
        mod = sys.modules.get(name)
        origin = getattr(mod, "__file__", None) or (list(getattr(mod, "__path__", [])) or [None])[0]
        if mod is not None and origin and not Path(origin).resolve().is_relative_to(root):
            raise ImportError(f"module {name!r} is already imported from {origin}, not from the GREAT checkout "
                              f"{root}; run GREAT in a fresh process")
    use_legacy_keras()
    for p in (root / "running", root):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    mods = {n: importlib.import_module(m) for n, m in (
        ("data_loader", "data.data_loader"), ("vocabulary", "data.vocabulary"), ("meta_model", "meta_model"),
        ("checkpoint_tracker", "checkpoint_tracker"), ("run_model", "run_model"))}
    return GreatCheckout(path=root, commit=_git_commit(root), **mods)
