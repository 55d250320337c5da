"""Shared fixtures: GREAT-format dev shards (built by the suite, and the real ones where present).

Every test that reads GREAT data takes ``great_dev_dir``, which runs it on shards the suite builds
itself (:mod:`great_data`: built from stdlib modules plus hand-written lines for the real data's
quirks) and, where the real GREAT dev shards exist (``../shared/data/great/dev`` or
``$TRAINSTATS_SHARED/data/great/dev``), a second time on those. A few tests compare against GREAT's
own output and need the real shards (``real_great_dev_dir``); without them they are not collected
(the run's header and summary say so), so a fresh clone skips only what needs a GREAT checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from great_data import build_dev_shards

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("TRAINSTATS_SHARED")
    return Path(env) if env else REPO.parent / "shared"


REAL_DEV_DIR = _shared_dir() / "data" / "great" / "dev"
HAVE_REAL = REAL_DEV_DIR.is_dir() and any(REAL_DEV_DIR.iterdir())
_NOT_RUN: list[str] = []


@pytest.fixture(scope="session")
def built_great_dev_dir(tmp_path_factory) -> Path:
    """Two GREAT-format dev shards built by the suite (about 1,000 lines, quirks included)."""
    return build_dev_shards(tmp_path_factory.mktemp("great_built"))


@pytest.fixture(scope="session")
def real_great_dev_dir() -> Path:
    """The two real GREAT dev shards (tests that take this fixture are not collected without them)."""
    if not HAVE_REAL:   # only reached when a test is selected explicitly by its id
        pytest.skip(f"real GREAT shards not found at {REAL_DEV_DIR} (set TRAINSTATS_SHARED to the shared/ folder)")
    return REAL_DEV_DIR


@pytest.fixture(scope="session", params=["built", "real"] if HAVE_REAL else ["built"])
def great_dev_dir(request) -> Path:
    """GREAT-format dev shards: the suite's own (``[built]``), and the real ones (``[real]``) where present."""
    return request.getfixturevalue(f"{request.param}_great_dev_dir")


@pytest.fixture(scope="session")
def preferred_great_dev_dir(request) -> Path:
    """One set of GREAT-format dev shards for expensive tests run once: the real ones where present."""
    return request.getfixturevalue("real_great_dev_dir" if HAVE_REAL else "built_great_dev_dir")


def pytest_collection_modifyitems(config, items):
    if HAVE_REAL:
        return
    real_only = [item for item in items if "real_great_dev_dir" in getattr(item, "fixturenames", ())]
    if real_only:
        _NOT_RUN.extend(item.nodeid for item in real_only)
        config.hook.pytest_deselected(items=real_only)
        items[:] = [item for item in items if item not in real_only]


def pytest_report_header(config):
    if HAVE_REAL:
        return f"GREAT data: built by the suite, and the real dev shards at {REAL_DEV_DIR}"
    return (f"GREAT data: built by the suite (real dev shards not found at {REAL_DEV_DIR}: the tests that "
            f"compare with GREAT's own output are not collected; set TRAINSTATS_SHARED to run them)")


def pytest_terminal_summary(terminalreporter):
    if _NOT_RUN:
        terminalreporter.write_line(
            f"{len(_NOT_RUN)} test(s) need the real GREAT dev shards (not found at {REAL_DEV_DIR}) and were "
            f"not collected: {', '.join(_NOT_RUN)}")
