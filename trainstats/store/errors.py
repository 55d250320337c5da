"""Exceptions raised by the store."""
from __future__ import annotations

__all__ = ["NotARunDirectory", "StoreWriteError", "UnsupportedSchemaVersion"]


class NotARunDirectory(ValueError):
    """A path given as a run directory is not one (no or unreadable ``run.json``)."""


class UnsupportedSchemaVersion(ValueError):
    """``run.json`` declares a schema version this trainstats cannot read."""


class StoreWriteError(RuntimeError):
    """The background writer failed (disk full, permission…) and ``on_error="raise"`` was asked for."""
