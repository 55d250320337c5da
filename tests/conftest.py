"""Shared fixtures: GREAT-format dev shards (built by the suite, and the real ones where present).

Every test that reads GREAT data takes ``great_dev_dir``, which runs it on shards the suite builds
itself (:mod:`great_data`: built from stdlib modules plus hand-written lines for the real data's
quirks) and, where the real GREAT dev shards exist (``../shared/data/great/dev`` or
``$TRAINSTATS_SHARED/data/great/dev``), a second time on those. A few tests compare against GREAT's
own output and need the real shards (``real_great_dev_dir``), and one checks the shipped headline table
against the paper's own CSV (``shared_paper_csv``); without that data they are not collected (the
run's summary says so), so a fresh clone skips only what needs a GREAT checkout.
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
PAPER_CSV = _shared_dir() / "paper" / "varmisuse_results.csv"
#: fixtures of data that only ../shared has -> where it was looked for, when it is missing
_MISSING = {name: path for name, path, present in (
    ("real_great_dev_dir", REAL_DEV_DIR, HAVE_REAL),
    ("shared_paper_csv", PAPER_CSV, PAPER_CSV.is_file())) if not present}
_NOT_RUN: dict[str, list[str]] = {}


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


@pytest.fixture(scope="session")
def shared_paper_csv() -> Path:
    """The study's per-epoch results CSV in ``../shared/paper`` (tests taking it are not collected without it)."""
    if not PAPER_CSV.is_file():
        pytest.skip(f"the study's CSV is not at {PAPER_CSV} (set TRAINSTATS_SHARED to the shared/ folder)")
    return PAPER_CSV


@pytest.fixture(scope="session", params=["built", "real"] if HAVE_REAL else ["built"])
def great_dev_dir(request) -> Path:
    """GREAT-format dev shards: the suite's own (``[built]``), and the real ones (``[real]``) where present."""
    return request.getfixturevalue(f"{request.param}_great_dev_dir")


@pytest.fixture(scope="session")
def preferred_great_dev_dir(request) -> Path:
    """One set of GREAT-format dev shards for expensive tests run once: the real ones where present."""
    return request.getfixturevalue("real_great_dev_dir" if HAVE_REAL else "built_great_dev_dir")


def pytest_collection_modifyitems(config, items):
    kept, dropped = [], []
    for item in items:
        missing = [name for name in getattr(item, "fixturenames", ()) if name in _MISSING]
        if missing:
            _NOT_RUN.setdefault(missing[0], []).append(item.nodeid)
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config):
    if HAVE_REAL:
        return f"GREAT data: built by the suite, and the real dev shards at {REAL_DEV_DIR}"
    return (f"GREAT data: built by the suite (real dev shards not found at {REAL_DEV_DIR}: the tests that "
            f"compare with GREAT's own output are not collected; set TRAINSTATS_SHARED to run them)")


def pytest_terminal_summary(terminalreporter):
    what = {"real_great_dev_dir": "the real GREAT dev shards", "shared_paper_csv": "the study's per-epoch CSV"}
    for fixture, ids in _NOT_RUN.items():
        terminalreporter.write_line(
            f"{len(ids)} test(s) need {what[fixture]} (not found at {_MISSING[fixture]}; set TRAINSTATS_SHARED) "
            f"and were not collected: {', '.join(ids)}")
