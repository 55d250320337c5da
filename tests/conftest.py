"""Shared fixtures: paths to the real GREAT shards beside the clone, temp run directories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("TRAINSTATS_SHARED")
    return Path(env) if env else REPO.parent / "shared"


@pytest.fixture(scope="session")
def great_dev_dir() -> Path:
    """The two real GREAT dev shards in ``../shared/data/great/dev`` (skip when absent)."""
    path = _shared_dir() / "data" / "great" / "dev"
    if not path.is_dir() or not any(path.iterdir()):
        pytest.skip(f"real GREAT shards not found at {path} (set TRAINSTATS_SHARED to the shared/ folder)")
    return path
