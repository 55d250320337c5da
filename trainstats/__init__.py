"""trainstats: per-sample training statistics for memorization studies.

Capture per-sample predictions, losses and correctness every training step into Parquet
(``trainstats.keras``, ``trainstats.great``), induce noise into GREAT-format VarMisuse data
(``trainstats.noise``), and score memorization against the noise flags (``trainstats.analysis``).

Reading a run needs no TensorFlow::

    import trainstats
    df = trainstats.read("runs/my-run", split="train")
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "RunWriter",
    "ValueColumn",
    "open_dataset",
    "read",
    "read_metadata",
    "sample_key",
]


def __getattr__(name: str):  # lazy: importing trainstats stays cheap
    if name in {"RunWriter", "ValueColumn", "open_dataset", "read", "read_metadata", "sample_key"}:
        from trainstats import store

        return getattr(store, name)
    raise AttributeError(f"module 'trainstats' has no attribute {name!r}")
